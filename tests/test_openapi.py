"""GET /api/v1/openapi.json: a valid OpenAPI document that lists every route of the contract,
matches the schemas the views load with, and describes the answers the API really gives."""

import json
import re
import shutil
import subprocess

import pytest
from marshmallow import Schema, ValidationError
from marshmallow import fields as mfields
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from werkzeug.exceptions import MethodNotAllowed, NotFound

from storage.models import RequestType
from tests.helpers import API, PROVENANCE, assert_error, award_body, member_body
from web.api import schemas

# The routes the public contract (DESIGN.md) names, relative to /api/v1.
CONTRACT = [
    ("post", "/requests"),
    ("get", "/requests/{request_id}"),
    ("get", "/requests"),
    ("post", "/members"),
    ("post", "/perk-awards"),
    ("post", "/disclosures"),
    ("post", "/promotions"),
    ("post", "/consents"),
    ("get", "/disclosures/export"),
    ("post", "/statements"),
    ("post", "/deliveries/{id}/confirm"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
]
PUBLIC = {("get", "/openapi.json"), ("get", "/docs"), ("post", "/statements")}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def doc(client) -> dict:
    resp = client.get(API + "/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return resp.get_json()


def _shape(path: str) -> str:
    """A path with its parameter names blanked: /requests/{request_id} -> /requests/{}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented(doc: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, _shape(path)): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _served(app) -> set[tuple[str, str]]:
    """(method, path shape) of every API route the app serves, relative to /api/v1."""
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(API) :])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((method.lower(), _shape(path)))
    return out


def _is_served(app, method: str, path: str) -> bool:
    adapter = app.url_map.bind("lethe.test")
    try:
        adapter.match(API + path.replace("{id}", "x").replace("{request_id}", "x"), method.upper())
    except (NotFound, MethodNotAllowed):
        return False
    return True


def test_document_is_valid_openapi_3_1(doc):
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": API}]
    assert doc["info"]["title"] and doc["info"]["version"]


def test_document_needs_no_key(client):
    assert client.get(API + "/openapi.json").status_code == 200


@pytest.mark.parametrize(("method", "path"), CONTRACT, ids=[f"{m} {p}" for m, p in CONTRACT])
def test_every_contract_route_is_documented(app, doc, method, path):
    if not _is_served(app, method, path):
        pytest.xfail(f"{method.upper()} {API}{path} is not implemented yet")
    assert (method, _shape(path)) in _documented(doc)


def test_every_served_api_route_is_documented(app, doc):
    missing = _served(app) - set(_documented(doc))
    assert not missing, f"served but not in openapi.json: {sorted(missing)}"


def test_every_documented_route_is_served(app, doc):
    extra = set(_documented(doc)) - _served(app)
    assert not extra, f"in openapi.json but not served: {sorted(extra)}"


def test_operations_declare_security_and_their_errors(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"]["type"] == "http" and schemes["apiKey"]["scheme"] == "bearer"
    for (method, path), op in _documented(doc).items():
        assert op.get("summary"), (method, path)
        responses = op["responses"]
        if (method, path) in PUBLIC:
            continue
        assert op.get("security") == [{"apiKey": []}], (method, path)
        for status in ("401", "403"):
            assert status in responses, (method, path, status)
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error"
        if method == "post":
            assert "422" in responses, (method, path)
            names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
            assert "Idempotency-Key" in names, (method, path)


def test_error_schema_is_the_contract_shape(doc):
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    inner = error["properties"]["error"]
    assert set(inner["required"]) == {"code", "message", "fields"}
    assert set(inner["properties"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(
    "name", ["MemberIn", "PerkAwardIn", "DisclosureIn", "PromotionIn", "ConsentIn", "RequestIn"]
)
def test_input_schemas_match_what_the_views_load(doc, name):
    documented = doc["components"]["schemas"][name]
    schema = getattr(schemas, name)()
    loadable = {f.data_key or n for n, f in schema.load_fields.items()}
    required = {f.data_key or n for n, f in schema.load_fields.items() if f.required}
    assert set(documented["properties"]) == loadable
    assert set(documented.get("required", [])) == required
    assert documented["additionalProperties"] is False  # unknown fields are refused


def test_request_enums_match_the_code(doc):
    props = doc["components"]["schemas"]["RequestIn"]["properties"]
    assert set(props["type"]["enum"]) == {t.value for t in RequestType}
    assert set(props["grounds"]["enum"]) == set(schemas.RESTRICTION_GROUNDS)
    assert set(props["purpose"]["enum"]) == set(schemas.OBJECTION_PURPOSES)


def test_documented_request_routes_are_the_requests_endpoints(doc):
    item = doc["paths"]["/requests"]
    assert item["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RequestIn"
    }
    params = {p["name"] for p in item["get"]["parameters"]}
    assert params == set(schemas.RequestListIn().fields)


# ---------------------------------------------------------------------------------------
# What the API answers fits what the document says


def _validator(doc: dict, schema: dict) -> OAS31Validator:
    # Embed the components so "#/components/..." references resolve against this root.
    return OAS31Validator({**schema, "components": doc["components"]})


def conforms(doc: dict, method: str, path: str, resp) -> None:
    responses = doc["paths"][path][method]["responses"]
    status = str(resp.status_code)
    assert status in responses, f"{method.upper()} {path} answered {status}, not documented"
    content = responses[status].get("content", {})
    assert resp.mimetype in content, (status, resp.mimetype, list(content))
    schema = content[resp.mimetype].get("schema")
    if schema is not None:
        errors = sorted(_validator(doc, schema).iter_errors(resp.get_json()), key=str)
        assert not errors, [e.message for e in errors]


def test_real_answers_conform_to_the_document(client, api_key, key_with, doc):
    post = client.post
    conforms(doc, "post", "/members", post(API + "/members", json=member_body(1), headers=api_key))
    conforms(
        doc,
        "post",
        "/members",
        post(API + "/members", json=member_body(1, name="P"), headers=api_key),
    )
    conforms(
        doc,
        "post",
        "/perk-awards",
        post(API + "/perk-awards", json=award_body(1), headers=api_key),
    )
    consent = {
        "consent_id": "c-1",
        "member_id": "m-1",
        "purpose": "name_and_likeness",
        "status": "granted",
        "notice_version": "1",
        "channel": "web",
        "granted_at": "2024-01-01T00:00:00Z",
        **PROVENANCE,
    }
    conforms(doc, "post", "/consents", post(API + "/consents", json=consent, headers=api_key))
    disclosure = {"disclosure_id": "d-1", "award_id": "aw-1", "status": "required", **PROVENANCE}
    resp = post(API + "/disclosures", json=disclosure, headers=api_key)
    conforms(doc, "post", "/disclosures", resp)
    promotion = {"promotion_id": "p-1", "member_id": "m-1", "audience": "friends", **PROVENANCE}
    resp = post(API + "/promotions", json=promotion, headers=api_key)
    conforms(doc, "post", "/promotions", resp)

    # Errors: 401, 403, 409, 422.
    conforms(doc, "post", "/members", post(API + "/members", json=member_body(2)))
    weak = key_with("requests:read")
    conforms(doc, "post", "/members", post(API + "/members", json=member_body(2), headers=weak))
    dup = member_body(2, email="person1@example.org")
    conforms(doc, "post", "/members", post(API + "/members", json=dup, headers=api_key))
    conforms(doc, "post", "/members", post(API + "/members", json=[], headers=api_key))

    # Requests: open, completed (with result), portability, list, 404, 422.
    for body in (
        {"type": "erasure", "member_id": "m-1", "verified": True},
        {"type": "access", "member_id": "m-1", "verified": True},
        {"type": "portability", "member_id": "m-1", "verified": True},
        {"type": "access", "email": "someone@example.org"},
    ):
        resp = post(API + "/requests", json=body, headers=api_key)
        conforms(doc, "post", "/requests", resp)
        got = client.get(f"{API}/requests/{resp.get_json()['id']}", headers=api_key)
        conforms(doc, "get", "/requests/{request_id}", got)
    conforms(doc, "get", "/requests", client.get(API + "/requests", headers=api_key))
    conforms(doc, "get", "/requests", client.get(API + "/requests?page=0", headers=api_key))
    conforms(doc, "post", "/requests", post(API + "/requests", json={}, headers=api_key))
    missing = client.get(API + "/requests/nope", headers=api_key)
    conforms(doc, "get", "/requests/{request_id}", missing)


def test_streamed_and_other_answers_conform_to_the_document(client, api_key, key_with, doc):
    """The disclosure list is streamed as it is read, not dumped through its schema: its
    JSON must still be what DisclosureListOut states; and the answers of the other
    operations, each dumped through its own schema, fit the document too."""
    post = client.post
    post(API + "/members", json=member_body(1), headers=api_key)
    award = award_body(1, status="received", received_at="2024-03-01T10:00:00Z")
    post(API + "/perk-awards", json=award, headers=api_key)
    disclosure = {"disclosure_id": "d-1", "award_id": "aw-1", "status": "disclosed"}
    post(API + "/disclosures", json={**disclosure, **PROVENANCE}, headers=api_key)
    reader = key_with("disclosures:read")
    for query in ("", "?brand=b-nova", "?brand=nope"):
        resp = client.get(API + "/disclosures/export" + query, headers=reader)
        conforms(doc, "get", "/disclosures/export", resp)
    csv = client.get(API + "/disclosures/export?format=csv", headers=reader)
    documented = doc["paths"]["/disclosures/export"]["get"]["responses"]["200"]["content"]
    assert csv.status_code == 200 and csv.mimetype in documented
    listed = client.get(API + "/disclosures/export", headers=reader).get_json()
    assert [e["disclosure_id"] for e in listed["entries"]] == ["d-1"]

    ident = {"member_id": "m-1", "subscriber_id": 1, "identifier": "c-1"}
    resp = post(API + "/recipient-identifiers", json=ident, headers=api_key)
    conforms(doc, "post", "/recipient-identifiers", resp)
    resp = post(API + "/deliveries/nope/confirm", headers=api_key)
    conforms(doc, "post", "/deliveries/{delivery_id}/confirm", resp)
    resp = post(API + "/statements", json={"record_key": "NOPE-NOPE"})
    conforms(doc, "post", "/statements", resp)
    conforms(doc, "get", "/openapi.json", client.get(API + "/openapi.json"))
    page = client.get(API + "/docs")
    assert page.mimetype in doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]


def test_completed_request_result_is_documented(doc):
    props = doc["components"]["schemas"]["RequestOut"]["properties"]
    result = props["result"]
    assert {"report_url", "export_json_url", "export_zip_url", "expires_at", "completed_at"} <= set(
        result["properties"]
    )


# ---------------------------------------------------------------------------------------
# The document's rules are the server's rules (found by schemathesis against a live server)

NODE = shutil.which("node")
# Python-only regex syntax, meaningless or different in ECMA-262 (JSON Schema's dialect).
PYTHON_ONLY = ("\\Z", "\\A", "(?P", "(?<=", "(?<!", "(?#", "(?i", "(?m", "(?s", "(?x", "(?a")
# Strings on which Python and ECMA-262 disagree easily: trailing newline ("$" in Python
# matches before it), the blanks only one dialect calls \s, NUL, non-ASCII.
PROBES = [
    "m-1",
    "m-1\n",
    "\nm-1",
    "m 1",
    "m\t1",
    "m\x1c1",
    "m\x851",
    "m\xa01",
    "m\u20281",
    "m\ufeff1",
    "m\x001",
    "\x01",
    "ü-1",
    "USD",
    "USD\n",
    "usd",
    "k" * 200,
    "k" * 201,
    "a b",
    "é",
    "",
]


def _patterns(node, where="") -> list[tuple[str, str]]:
    """Every (location, pattern) in a JSON document."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.append((where, value))
            else:
                found.extend(_patterns(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_patterns(value, f"{where}/{i}"))
    return found


def _ecma_matches(patterns: list[str], probes: list[str]) -> list:
    """For each pattern: None if ECMA-262 (with the u flag) refuses it, else the probes'
    results of RegExp.test, computed by node."""
    script = (
        "const [ps, xs] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(ps.map(p => { let r;"
        " try { r = new RegExp(p, 'u'); } catch (e) { return null; }"
        " return xs.map(x => r.test(x)); })));"
    )
    out = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps([patterns, probes]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_patterns_use_no_python_only_syntax(doc):
    patterns = _patterns(doc)
    assert patterns, "the document states its identifier rules as patterns"
    for where, pattern in patterns:
        for token in PYTHON_ONLY:
            assert token not in pattern, (where, pattern, token)


@pytest.mark.skipif(NODE is None, reason="node (a JavaScript regex engine) is not installed")
def test_patterns_compile_as_ecma262_and_mean_what_python_means(doc):
    """Each documented pattern is valid ECMA-262, and decides every probe the way the server's
    Python check does (fullmatch: Python's "$" would let a trailing newline through)."""
    patterns = sorted({p for _, p in _patterns(doc)})
    results = _ecma_matches(patterns, PROBES)
    for pattern, matches in zip(patterns, results, strict=True):
        assert matches is not None, f"not a valid ECMA-262 pattern: {pattern!r}"
        for probe, ecma in zip(PROBES, matches, strict=True):
            python = re.fullmatch(pattern, probe) is not None
            assert python == ecma, (pattern, probe, python, ecma)


@pytest.mark.parametrize("member_id", ["m-1\n", "m-1 ", "m\xa01", "m\u20281", "m\x1c1", "m\x001"])
def test_identifiers_with_blanks_are_refused_even_at_the_end(client, api_key, member_id):
    resp = client.post(API + "/members", json=member_body(1, member_id=member_id), headers=api_key)
    assert_error(resp, 422, "invalid", fields=["member_id"])


def test_documented_identifier_pattern_is_what_the_server_enforces(doc):
    documented = doc["components"]["schemas"]["MemberIn"]["properties"]["member_id"]["pattern"]
    body = {"member_id": "", "email": "a@example.org", **PROVENANCE}
    for probe in PROBES:
        if not 1 <= len(probe) <= 80:
            continue
        try:
            schemas.MemberIn().load({**body, "member_id": probe})
            accepted = True
        except ValidationError as exc:
            assert set(exc.messages) == {"member_id"}, exc.messages
            accepted = False
        assert accepted == (re.fullmatch(documented, probe) is not None), repr(probe)


def _params(doc, path: str, method: str = "get") -> dict[str, dict]:
    return {p["name"]: p for p in doc["paths"][path][method]["parameters"]}


def test_request_list_filters_state_their_enums_formats_and_bounds(doc):
    params = _params(doc, "/requests")
    fields = schemas.RequestListIn().fields
    assert set(params) == set(fields)
    for name in ("status", "type", "channel"):
        assert params[name]["in"] == "query" and not params[name]["required"]
        assert set(params[name]["schema"]["enum"]) == set(fields[name].validators[0].choices)
    assert set(params["type"]["schema"]["enum"]) == {t.value for t in RequestType}
    for name in ("due_before", "due_after"):
        assert params[name]["schema"]["type"] == "string"
        assert params[name]["schema"]["format"] == "date-time"
    assert params["page"]["schema"]["type"] == "integer"
    assert params["page"]["schema"]["minimum"] == 1
    assert params["page"]["schema"]["maximum"] == 10**6
    assert params["per_page"]["schema"]["minimum"] == 1
    assert params["per_page"]["schema"]["maximum"] == 200


def test_disclosure_export_parameters_state_their_lengths_and_formats(doc):
    params = _params(doc, "/disclosures/export")
    assert set(params) == {"brand", "campaign", "format"}
    for name in ("brand", "campaign"):
        assert params[name]["schema"]["minLength"] == 1
        assert params[name]["schema"]["maxLength"] == 80
    assert set(params["format"]["schema"]["enum"]) == {"json", "csv"}
    assert params["format"]["schema"]["default"] == "json"


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=", "status"), ("page=0", "page"), ("per_page=201", "per_page")],
)
def test_values_outside_the_documented_bounds_are_422(client, api_key, query, field):
    resp = client.get(f"{API}/requests?{query}", headers=api_key)
    assert_error(resp, 422, "invalid", fields=[field])


def _idempotency_header(doc, path: str) -> dict:
    op = doc["paths"][path]["post"]
    (header,) = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
    return header["schema"]


def test_idempotency_key_is_documented_as_the_server_enforces_it(client, api_key, doc):
    schema = _idempotency_header(doc, "/members")
    assert schema["type"] == "string"
    assert schema["minLength"] == 1 and schema["maxLength"] == 200
    for path in ("/requests", "/consents", "/recipient-identifiers"):
        assert _idempotency_header(doc, path) == schema
    probes = ["k", "k" * 200, "k" * 201, "a b", "retry-1:x", "é", "\xa0k", "k\x7f"]
    for n, key in enumerate(probes):
        resp = client.post(
            API + "/members",
            json=member_body(n, member_id=f"m-{n}"),
            headers={**api_key, "Idempotency-Key": key},
        )
        refused = (
            resp.status_code == 422 and "Idempotency-Key" in resp.get_json()["error"]["fields"]
        )
        documented = len(key) <= 200 and re.fullmatch(schema["pattern"], key) is not None
        assert refused != documented, (key, resp.status_code)


def test_non_ascii_idempotency_key_is_422_in_the_json_shape(client, api_key):
    resp = client.post(
        API + "/members", json=member_body(1), headers={**api_key, "Idempotency-Key": "clé"}
    )
    assert_error(resp, 422, "invalid", fields=["Idempotency-Key"])


# ---------------------------------------------------------------------------------------
# Strict booleans, clean text: the rules live in the schemas


def _schema_classes():
    """The schemas the API loads input with (the ...Out ones only dump)."""
    return [
        obj
        for obj in vars(schemas).values()
        if isinstance(obj, type)
        and issubclass(obj, Schema)
        and obj.__module__ == schemas.__name__
        and obj.__name__.endswith("In")
    ]


def _all_fields(schema_cls):
    for name, field in schema_cls().fields.items():
        yield f"{schema_cls.__name__}.{name}", field
        inner = getattr(field, "inner", None)
        if inner is not None:
            yield f"{schema_cls.__name__}.{name}[]", inner


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/members", member_body(1, new_signup=0), "new_signup"),
        ("/members", member_body(1, new_signup="yes"), "new_signup"),
        ("/members", member_body(1, new_signup="true"), "new_signup"),
        ("/requests", {"type": "access", "member_id": "m-1", "verified": "yes"}, "verified"),
        ("/requests", {"type": "access", "member_id": "m-1", "verified": 1}, "verified"),
        (
            "/promotions",
            {"promotion_id": "p", "member_id": "m-1", "audience": "a", "uses_likeness": "on"},
            "uses_likeness",
        ),
    ],
    ids=["0", "yes", "true-string", "verified-yes", "verified-1", "uses_likeness-on"],
)
def test_booleans_are_only_json_true_or_false(client, api_key, path, body, field):
    if path != "/requests":
        body = {**PROVENANCE, **body}
    resp = client.post(API + path, json=body, headers=api_key)
    assert_error(resp, 422, "invalid", fields=[field])


def test_every_boolean_of_the_api_is_strict_and_documented_boolean(doc):
    found = 0
    for where, field in (f for cls in _schema_classes() for f in _all_fields(cls)):
        if isinstance(field, mfields.Boolean):
            found += 1
            assert isinstance(field, schemas.Boolean), where
            with pytest.raises(ValidationError):
                field.deserialize("true")
            with pytest.raises(ValidationError):
                field.deserialize(0)
            assert field.deserialize(True) is True and field.deserialize(False) is False
    assert found >= 3
    for name, prop in (
        ("MemberIn", "new_signup"),
        ("PromotionIn", "uses_likeness"),
        ("RequestIn", "verified"),
    ):
        assert doc["components"]["schemas"][name]["properties"][prop]["type"] == "boolean"


def test_every_string_field_of_the_api_refuses_nul_and_lone_surrogates():
    found = 0
    for where, field in (f for cls in _schema_classes() for f in _all_fields(cls)):
        if isinstance(field, mfields.String) and not isinstance(field, mfields.Email):
            found += 1
            assert isinstance(field, schemas.Text), where
            for bad in ("a\x00b", "\ud800", "x\udfff"):
                with pytest.raises(ValidationError):
                    field.deserialize(bad)
    assert found >= 30


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        ("RequestIn", {"type": "erasure", "member_id": "m-1", "reason": "a\x00b"}, "reason"),
        ("RequestIn", {"type": "rectification", "member_id": "m\ud800", "correction": "x"}, None),
        (
            "RequestIn",
            {
                "type": "restriction",
                "member_id": "m-1",
                "grounds": "legal_claims",
                "records": ["profile.name", "x\udc00"],
            },
            "records",
        ),
        ("MemberIn", {**member_body(1), "name": "Per\x00son"}, "name"),
        ("MemberIn", {**member_body(1), "email": "a\x00@example.org"}, "email"),
        ("StatementIn", {"record_key": "ABCD\x00"}, "record_key"),
    ],
    ids=["nul-reason", "surrogate-id", "surrogate-in-list", "nul-name", "nul-email", "nul-key"],
)
def test_schemas_themselves_refuse_nul_and_lone_surrogates(schema, body, field):
    """Not only json_body's pre-check: the web form loads through the same schemas."""
    with pytest.raises(ValidationError) as caught:
        getattr(schemas, schema)().load(body)
    if field is not None:
        assert any(k == field or k.startswith(field) for k in caught.value.messages), (
            caught.value.messages
        )


# ---------------------------------------------------------------------------------------
# Every answer the server gives is declared; links for stateful testing

# What each operation can answer besides 200/201 (401 and 403 for every keyed operation):
# 404 for ids that are not there (or not this key's), 409 for state conflicts and concurrent
# writers, 413 for bodies over MAX_CONTENT_LENGTH, 422 for invalid input (including the
# Idempotency-Key header), 429 for the rate-limited public look-up.
# 414: gunicorn (and any proxy in front) refuses a request line over its limit (4094 bytes),
# which a long enough path or query parameter makes; its page is HTML, not the API's JSON.
LONG_URL = {"414"}
DECLARED = {
    ("post", "/members"): {"200", "201", "409", "413", "422"},
    ("post", "/perk-awards"): {"200", "201", "409", "413", "422"},
    ("post", "/disclosures"): {"200", "201", "409", "413", "422"},
    ("post", "/promotions"): {"200", "201", "409", "413", "422"},
    ("post", "/consents"): {"200", "201", "409", "413", "422"},
    ("post", "/recipient-identifiers"): {"200", "409", "413", "422"},
    ("post", "/deliveries/{}/confirm"): {"200", "404", "409", "413", "422"} | LONG_URL,
    ("get", "/disclosures/export"): {"200", "422"} | LONG_URL,
    ("post", "/requests"): {"201", "409", "413", "422"},
    ("get", "/requests"): {"200", "422"} | LONG_URL,
    ("get", "/requests/{}"): {"200", "404"} | LONG_URL,
    ("post", "/requests/{}/withdraw"): {"200", "404", "409", "413", "422"} | LONG_URL,
    ("get", "/requests/{}/report"): {"200", "404"} | LONG_URL,
    ("get", "/requests/{}/export"): {"200", "404"} | LONG_URL,
    ("get", "/requests/{}/export.zip"): {"200", "404"} | LONG_URL,
    ("post", "/statements"): {"200", "404", "413", "422", "429"},
    ("get", "/openapi.json"): {"200"},
    ("get", "/docs"): {"200"},
}


def test_every_answer_the_server_gives_is_declared(doc):
    documented = _documented(doc)
    assert set(DECLARED) == set(documented)
    for key, statuses in DECLARED.items():
        op = documented[key]
        expected = set(statuses)
        if key not in PUBLIC:
            expected |= {"401", "403"}
        assert set(op["responses"]) == expected, key
        for status, response in op["responses"].items():
            if status == "414":
                assert set(response["content"]) == {"text/html"}, key
            elif status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (key, status)
        if key not in PUBLIC:
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], key


def test_creating_a_request_links_to_reading_it_and_its_downloads(doc):
    op_ids = {
        op["operationId"]: (method, path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }
    assert len(op_ids) == len(_documented(doc)), "every operation has a unique operationId"
    links = doc["paths"]["/requests"]["post"]["responses"]["201"]["links"]
    targets = {op_ids[link["operationId"]] for link in links.values()}
    assert {
        ("get", "/requests/{request_id}"),
        ("get", "/requests/{request_id}/report"),
        ("get", "/requests/{request_id}/export"),
        ("post", "/requests/{request_id}/withdraw"),
    } <= targets
    for link in links.values():
        assert link["parameters"] == {"request_id": "$response.body#/id"}


def _doc_accepts(doc, name: str, body: dict) -> bool:
    schema = {"$ref": f"#/components/schemas/{name}"}
    return not list(_validator(doc, schema).iter_errors(body))


def _server_accepts(name: str, body: dict) -> bool:
    try:
        getattr(schemas, name)().load(body)
    except ValidationError:
        return False
    return True


REQUEST_BODIES = [
    {"type": "access", "email": "a@example.org"},
    {"type": "access", "member_id": "m-1"},
    {"type": "access", "member_id": "m-1", "verified": True},
    {"type": "access", "email": "a@example.org", "verified": True},
    {"type": "access", "email": "a@example.org", "verified": False},
    {"type": "access", "email": "a@example.org", "member_id": "m-1"},
    {"type": "access"},
    {"type": "access", "email": None, "member_id": None},
    {"type": "access", "email": None, "member_id": "m-1"},
    {"type": "access", "member_id": None, "email": "a@example.org"},
    {"type": "access", "member_id": "m-1", "reason": "because"},
    {"type": "access", "member_id": "m-1", "records": []},
    {"type": "portability", "member_id": "m-1", "reason": ""},
    {"type": "erasure", "member_id": "m-1", "reason": "x"},
    {"type": "erasure", "member_id": "m-1", "purpose": "profiling"},
    {"type": "rectification", "member_id": "m-1"},
    {"type": "rectification", "member_id": "m-1", "correction": "x", "records": ["a"]},
    {"type": "rectification", "member_id": "m-1", "correction": "x", "statement": "s"},
    {"type": "rectification", "member_id": "m-1", "correction": "x", "grounds": "legal_claims"},
    {"type": "restriction", "member_id": "m-1"},
    {"type": "restriction", "member_id": "m-1", "grounds": "legal_claims", "correction": "c"},
    {"type": "restriction", "member_id": "m-1", "grounds": "legal_claims", "statement": "c"},
    {"type": "objection", "member_id": "m-1", "purpose": "profiling"},
    {"type": "objection", "member_id": "m-1", "purpose": "profiling", "grounds_text": "g"},
    {"type": "objection", "member_id": "m-1", "purpose": "profiling", "reason": "r"},
    {"type": "objection", "member_id": "m-1"},
    {"type": "consent_withdrawal", "member_id": "m-1", "consent_purpose": "p"},
    {"type": "consent_withdrawal", "member_id": "m-1", "consent_purpose": "p", "reason": "r"},
    {"type": "consent_withdrawal", "member_id": "m-1"},
    {"type": "consent_withdrawal", "member_id": "m-1", "purpose": "profiling"},
]


@pytest.mark.parametrize("body", REQUEST_BODIES, ids=[str(i) for i in range(len(REQUEST_BODIES))])
def test_request_body_rules_are_in_the_document(doc, body):
    """Either-email-or-member_id, verified only with member_id, and which fields each type
    takes and needs: the document accepts exactly what the server's schema accepts."""
    assert _doc_accepts(doc, "RequestIn", body) == _server_accepts("RequestIn", body)


CONSENT = {
    "consent_id": "c-1",
    "member_id": "m-1",
    "purpose": "p",
    "notice_version": "1",
    "channel": "web",
    **PROVENANCE,
}
CONSENT_BODIES = [
    {"status": "granted", "granted_at": "2024-01-01T00:00:00Z"},
    {"status": "granted"},
    {"status": "granted", "granted_at": None},
    {"status": "granted", "withdrawn_at": "2024-01-01T00:00:00Z"},
    {"status": "withdrawn", "withdrawn_at": "2024-01-01T00:00:00Z"},
    {"status": "withdrawn", "withdrawn_at": None, "granted_at": "2024-01-01T00:00:00Z"},
    {"status": "withdrawn"},
]


@pytest.mark.parametrize("extra", CONSENT_BODIES, ids=[str(i) for i in range(len(CONSENT_BODIES))])
def test_consent_date_rules_are_in_the_document(doc, extra):
    body = {**CONSENT, **extra}
    assert _doc_accepts(doc, "ConsentIn", body) == _server_accepts("ConsentIn", body)


# ---------------------------------------------------------------------------------------
# Integers are JSON Schema integers: 4500.0 is one (2020-12), 1.5 and true are not; a query
# integer is ASCII digits


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(4500, True), (4500.0, True), (0.0, True), (1.5, False), (True, False), ("4500", False)],
)
def test_body_integers_are_what_json_schema_calls_integers(client, api_key, value, accepted):
    client.post(API + "/members", json=member_body(1), headers=api_key)
    resp = client.post(API + "/perk-awards", json=award_body(1, value_cents=value), headers=api_key)
    if accepted:
        assert resp.status_code == 201, resp.get_json()
    else:
        assert_error(resp, 422, "invalid", fields=["value_cents"])


@pytest.mark.parametrize("page", ["1_0", " 1", "+1", "\u0661", "1.0", "0x1"])
def test_query_integers_are_ascii_digits(client, api_key, page):
    resp = client.get(API + "/requests", query_string={"page": page}, headers=api_key)
    assert_error(resp, 422, "invalid", fields=["page"])


def test_ingesting_a_member_links_to_filing_a_verified_request_for_it(doc):
    responses = doc["paths"]["/members"]["post"]["responses"]
    for status in ("200", "201"):
        links = responses[status]["links"]
        kinds = set()
        for link in links.values():
            assert link["operationId"] == "fileRequest"
            body = dict(link["requestBody"])
            assert body.pop("member_id") == "$response.body#/external_id"
            body["member_id"] = "m-1"
            assert _doc_accepts(doc, "RequestIn", body) and _server_accepts("RequestIn", body)
            kinds.add(body["type"])
        assert kinds == {"access", "portability"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=1&page=x", "page"),
        ("page=2&page=3", "page"),
        ("status=open&status=bogus", "status"),
        ("per_page=5&per_page=", "per_page"),
    ],
)
def test_a_query_parameter_given_twice_is_422(client, api_key, query, field):
    """Each documented query parameter is one value: a second one is not silently dropped."""
    resp = client.get(f"{API}/requests?{query}", headers=api_key)
    assert_error(resp, 422, "invalid", fields=[field])


def test_a_disclosure_export_parameter_given_twice_is_422(client, api_key):
    resp = client.get(f"{API}/disclosures/export?format=json&format=csv", headers=api_key)
    assert_error(resp, 422, "invalid", fields=["format"])


DATE_TIMES = [
    ("2024-03-01T10:00:00+00:00", True),
    ("2024-03-01T10:00:00.123456Z", True),
    ("0002-01-01T00:00:00+05:00", True),
    ("9998-12-31T23:59:59-23:00", True),
    ("0001-01-01T00:00:00+05:00", False),  # before 0001-01-01 in UTC
    ("0001-01-01T10:00:00Z", False),
    ("9999-12-31T23:59:59-23:00", False),  # after 9999-12-31 in UTC
    ("9999-12-31T00:00:00Z", False),
]


@pytest.mark.parametrize(("value", "accepted"), DATE_TIMES, ids=[v for v, _ in DATE_TIMES])
def test_date_times_the_document_allows_are_the_ones_the_server_takes(doc, value, accepted):
    """Every value here is an RFC 3339 date-time (format date-time); the calendar's first and
    last day are refused, since there an offset can put the UTC value outside years 1-9999.
    The document says so with a pattern, and the server checks that same pattern."""
    member = doc["components"]["schemas"]["MemberIn"]["properties"]["joined_at"]
    assert member["format"] == "date-time"
    pattern = member["pattern"]
    query = {p["name"]: p for p in doc["paths"]["/requests"]["get"]["parameters"]}
    assert query["due_before"]["schema"]["pattern"] == pattern
    assert (re.fullmatch(pattern, value) is not None) == accepted
    body = {**member_body(1), "joined_at": value}
    assert _server_accepts("MemberIn", body) == accepted
    assert _server_accepts("RequestListIn", {"due_after": value}) == accepted
