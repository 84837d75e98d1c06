"""GET /api/v1/openapi.json: a valid OpenAPI document that lists every route of the contract,
matches the schemas the views load with, and describes the answers the API really gives."""

import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from werkzeug.exceptions import MethodNotAllowed, NotFound

from storage.models import RequestType
from tests.helpers import API, PROVENANCE, award_body, member_body
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
]
PUBLIC = {("get", "/openapi.json"), ("post", "/statements")}
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


def test_completed_request_result_is_documented(doc):
    props = doc["components"]["schemas"]["RequestOut"]["properties"]
    result = props["result"]
    assert {"report_url", "export_json_url", "export_zip_url", "expires_at", "completed_at"} <= set(
        result["properties"]
    )
