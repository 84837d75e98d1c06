"""The OpenAPI 3.1 document of ``/api/v1``, generated from the same marshmallow schemas the
views load and dump with (apispec), so the contract cannot drift from the code."""

from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from rights.ledger.apikeys import SCOPES
from rights.lifecycle.idempotency import KEY_MAX_LENGTH, KEY_PATTERN
from web.api import schemas

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
            },
        }
    },
}


def _json(schema) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


ERROR_TEXT = {
    401: "No valid API key",
    403: "Key lacks the scope",
    404: "Not found",
    409: "Conflict (the record's state, an erased person, or a concurrent writer: retry)",
    413: "Body too large",
    422: "Invalid input (see error.fields)",
    429: "Rate limited",
}


def _errors(*codes: int) -> dict:
    out = {
        str(c): {"description": ERROR_TEXT[c], **_json({"$ref": "#/components/schemas/Error"})}
        for c in codes
    }
    if "401" in out:
        out["401"]["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
        }
    if "429" in out:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return out


# gunicorn (or a proxy in front of it) refuses a request line over its limit (4094 bytes) with
# its own HTML page, before Lethe sees it: any operation with a path or query parameter can get
# this answer.
LONG_URL = {
    "414": {
        "description": "URI too long (refused by the HTTP server)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}

KEYED = (401, 403)  # every operation that needs an API key
WRITE = (409, 413, 422)  # every POST with a body: state or concurrency, size, input

IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying a POST with the same key and body replays the first answer "
    "(header Idempotent-Replayed: true); the same key with another body is refused (422). "
    f"1 to {KEY_MAX_LENGTH} printable ASCII characters, spaces only inside; anything else is "
    "refused (422).",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX_LENGTH,
        "pattern": KEY_PATTERN,
    },
}
REPLAYED = {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}}

# What the views add to the dumped schemas (apispec sees only the marshmallow fields, and
# marks the schemas closed, so anything else answered must be declared here).
RECORD_KIND = {
    "type": "string",
    "enum": ["member", "perk_award", "disclosure", "promotion", "consent"],
}
EXTENDED = {
    "type": ["object", "null"],
    "description": "The one extension (Art. 12(3)), if any.",
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "months": {"type": "integer"},
        "reason": {"type": "string"},
    },
}
RESULT = {
    "type": "object",
    "description": "Present once the request is completed. To the key that filed it: for "
    "access a link to the report, for portability links to the JSON and zip exports (until "
    "expires_at; then downloads is 'expired'), for erasure the signed deletion receipt and, on "
    "the first read only, the record key.",
    "properties": {
        "completed_at": {"type": "string", "format": "date-time"},
        "report_url": {"type": "string"},
        "export_json_url": {"type": "string"},
        "export_zip_url": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
        "downloads": {"type": "string", "enum": ["expired"]},
        "receipt": {"type": "string", "description": "JWS, typ lethe-receipt+jws"},
        "record_key": {"type": "string", "description": "shown once"},
    },
    "required": ["completed_at"],
}

DISCLOSURE_LIST = {
    "type": "object",
    "required": ["generated_at", "brand", "campaign", "entries"],
    "properties": {
        "generated_at": {"type": "string", "format": "date-time"},
        "brand": {"type": ["string", "null"]},
        "campaign": {"type": ["string", "null"]},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "disclosure_id": {"type": "string"},
                    "member_id": {"type": "string"},
                    "handle": {"type": ["string", "null"]},
                    "name": {"type": ["string", "null"]},
                    "perk": {"type": "string"},
                    "brand_id": {"type": "string"},
                    "campaign_id": {"type": ["string", "null"]},
                    "received_at": {"type": "string", "format": "date-time"},
                    "listed_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}

INGEST = {
    "/members": (
        "ingestMember",
        "MemberIn",
        "Create or update a member (email, name, handle, address).",
    ),
    "/perk-awards": ("ingestPerkAward", "PerkAwardIn", "Create or update a perk award."),
    "/disclosures": (
        "ingestDisclosure",
        "DisclosureIn",
        "Create or update an FTC disclosure-list entry.",
    ),
    "/promotions": (
        "ingestPromotion",
        "PromotionIn",
        "Record a use of a member's name or likeness.",
    ),
    "/consents": ("ingestConsent", "ConsentIn", "Record a consent given or withdrawn."),
}

# A filed request (its id in the 201 body) leads to reading it, its downloads, withdrawing it.
REQUEST_LINKS = {
    "GetRequest": "getRequest",
    "GetRequestReport": "getRequestReport",
    "GetRequestExport": "getRequestExport",
    "GetRequestExportZip": "getRequestExportZip",
    "WithdrawRequest": "withdrawRequest",
}


# A member just ingested (its id in the body) can have a request filed for it as verified (the
# platform vouches for its own member; scope requests:verified), which an access or portability
# request completes at once. The body is the link's, not merged with another (the OpenAPI
# meaning of a link's requestBody; x-schemathesis says so to schemathesis, which merges by
# default).
MEMBER_LINKS = {
    f"FileVerified{kind.title()}Request": {
        "operationId": "fileRequest",
        "description": f"File a verified {kind} request for this member.",
        "requestBody": {"type": kind, "member_id": "$response.body#/external_id", "verified": True},
        "x-schemathesis": {"merge_body": False},
    }
    for kind in ("access", "portability")
}


def _request_rules() -> dict:
    """What RequestIn's schema validator checks, as JSON Schema: either an email (then never
    verified: the platform vouches only for its own members) or a member_id; and per type,
    the fields it needs and the fields it does not take (schemas.TYPE_FIELDS)."""
    every = {name for allowed in schemas.TYPE_FIELDS.values() for name in allowed}
    who = [
        {
            "title": "by email",
            "required": ["email"],
            "properties": {
                "email": {"type": "string"},
                "member_id": {"type": "null"},
                "verified": {"const": False},
            },
        },
        {
            "title": "by member_id",
            "required": ["member_id"],
            "properties": {"member_id": {"type": "string"}, "email": {"type": "null"}},
        },
    ]
    by_type = [
        {
            "title": kind,
            "required": ["type", *sorted(n for n, needed in allowed.items() if needed)],
            "properties": {
                "type": {"const": kind},
                **{name: False for name in sorted(every - set(allowed))},
            },
        }
        for kind, allowed in schemas.TYPE_FIELDS.items()
    ]
    return {"allOf": [{"oneOf": who}, {"oneOf": by_type}]}


def _consent_rules() -> dict:
    """ConsentIn: each status with the date it needs (ConsentIn.DATE_FOR_STATUS)."""
    branches = []
    for status in schemas.CONSENT_STATUSES:
        needed = schemas.ConsentIn.DATE_FOR_STATUS.get(status)
        branch = {"title": status, "properties": {"status": {"const": status}}}
        if needed:
            branch["required"] = [needed]
            branch["properties"][needed] = {"type": "string"}
        branches.append(branch)
    return {"oneOf": branches}


@cache
def openapi_document() -> dict:
    spec = APISpec(
        title="Lethe API",
        version="1.0.0",
        openapi_version="3.1.0",
        info={
            "description": "Data subject rights for the perk platform. Errors always have "
            'the shape {"error": {"code", "message", "fields"}}. Text never holds NUL or an '
            "unpaired surrogate; booleans are JSON true or false only; unknown fields are "
            "refused."
        },
        servers=[{"url": "/api/v1"}],
        plugins=[MarshmallowPlugin()],
    )
    spec.components.security_scheme(
        "apiKey",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "API key from `flask apikeys create`. Scopes: "
            + "; ".join(f"{k}: {v}" for k, v in SCOPES.items()),
        },
    )
    spec.components.schema("Error", ERROR)
    for name in (
        "MemberIn",
        "PerkAwardIn",
        "DisclosureIn",
        "PromotionIn",
        "ConsentIn",
        "RecordOut",
        "RequestIn",
        "RequestOut",
        "StatementIn",
        "RecipientIdentifierIn",
    ):
        spec.components.schema(name, schema=getattr(schemas, name))
    secured = [{"apiKey": []}]
    for path, (operation_id, schema, summary) in INGEST.items():
        links = {"links": MEMBER_LINKS} if path == "/members" else {}
        spec.path(
            path=path,
            operations={
                "post": {
                    "operationId": operation_id,
                    "summary": summary + " Needs scope records:write.",
                    "security": secured,
                    "parameters": [IDEMPOTENCY],
                    "requestBody": {"required": True, **_json(schema)},
                    "responses": {
                        "201": {
                            "description": "Created",
                            "headers": REPLAYED,
                            **_json("RecordOut"),
                            **links,
                        },
                        "200": {
                            "description": "Updated",
                            "headers": REPLAYED,
                            **_json("RecordOut"),
                            **links,
                        },
                        **_errors(*KEYED, *WRITE),
                    },
                }
            },
        )
    request_id = {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    spec.path(
        path="/recipient-identifiers",
        operations={
            "post": {
                "operationId": "setRecipientIdentifier",
                "summary": "Record what a webhook subscriber calls a member (its own customer "
                "id), sent in that subscriber's events; identifier null forgets it. Needs scope "
                "records:write.",
                "security": secured,
                "parameters": [IDEMPOTENCY],
                "requestBody": {"required": True, **_json("RecipientIdentifierIn")},
                "responses": {
                    "200": {
                        "description": "Recorded, or forgotten",
                        "headers": REPLAYED,
                        **_json(
                            {
                                "type": "object",
                                "required": ["subscriber_id", "recorded"],
                                "properties": {
                                    "subscriber_id": {"type": "integer"},
                                    "recorded": {"type": "boolean"},
                                },
                            }
                        ),
                    },
                    **_errors(*KEYED, *WRITE),
                },
            }
        },
    )
    spec.path(
        path="/deliveries/{delivery_id}/confirm",
        operations={
            "post": {
                "operationId": "confirmDelivery",
                "summary": "A subscriber confirms it has acted on a webhook delivery (scope "
                "deliveries:confirm; only its own deliveries).",
                "security": secured,
                "parameters": [
                    IDEMPOTENCY,
                    {
                        "name": "delivery_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Confirmed",
                        "headers": REPLAYED,
                        **_json(
                            {
                                "type": "object",
                                "required": ["id", "status", "confirmed_at"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "status": {"type": "string"},
                                    "confirmed_at": {"type": "string", "format": "date-time"},
                                },
                            }
                        ),
                    },
                    **_errors(*KEYED, 404, *WRITE),
                    **LONG_URL,
                },
            }
        },
    )
    spec.path(
        path="/disclosures/export",
        operations={
            "get": {
                "operationId": "exportDisclosures",
                "summary": "The FTC disclosure list (scope disclosures:read): entries whose "
                "award was received, leaving out anything withdrawn, contested, restricted or "
                "erased. Streamed.",
                "security": secured,
                # One parameter per field of the schema the view loads the query with.
                "parameters": [{"in": "query", "schema": schemas.DisclosureExportIn}],
                "responses": {
                    "200": {
                        "description": "The list",
                        "content": {
                            "application/json": {"schema": DISCLOSURE_LIST},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(*KEYED, 422),
                    **LONG_URL,
                },
            }
        },
    )
    spec.path(
        path="/requests",
        operations={
            "post": {
                "operationId": "fileRequest",
                "summary": "File a rights request for a member (scope requests:write; "
                "verified=true needs requests:verified).",
                "security": secured,
                "parameters": [IDEMPOTENCY],
                "requestBody": {"required": True, **_json("RequestIn")},
                "responses": {
                    "201": {
                        "description": "Filed",
                        "headers": REPLAYED,
                        **_json("RequestOut"),
                        "links": {
                            name: {
                                "operationId": operation_id,
                                "parameters": {"request_id": "$response.body#/id"},
                            }
                            for name, operation_id in REQUEST_LINKS.items()
                        },
                    },
                    **_errors(*KEYED, *WRITE),
                },
            },
            "get": {
                "operationId": "listRequests",
                "summary": "List requests, newest first (scope requests:read).",
                "security": secured,
                # One parameter per field of the schema the view loads the query with.
                "parameters": [{"in": "query", "schema": schemas.RequestListIn}],
                "responses": {
                    "200": {
                        "description": "One page",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/RequestOut"},
                                    },
                                    "page": {"type": "integer"},
                                    "per_page": {"type": "integer"},
                                    "total": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_errors(*KEYED, 422),
                    **LONG_URL,
                },
            },
        },
    )
    spec.path(
        path="/requests/{request_id}",
        operations={
            "get": {
                "operationId": "getRequest",
                "summary": "A request; once completed, 'result' links to the report or export. "
                "A request filed through another key is not found (404).",
                "security": secured,
                "parameters": [request_id],
                "responses": {
                    "200": {"description": "The request", **_json("RequestOut")},
                    **_errors(*KEYED, 404),
                    **LONG_URL,
                },
            }
        },
    )
    spec.path(
        path="/requests/{request_id}/withdraw",
        operations={
            "post": {
                "operationId": "withdrawRequest",
                "summary": "Withdraw a request at the member's wish (scope requests:write); the "
                "subject is told. A request that is closed, or an erasure already under way, "
                "cannot be withdrawn (409).",
                "security": secured,
                "parameters": [request_id, IDEMPOTENCY],
                "responses": {
                    "200": {"description": "Withdrawn", "headers": REPLAYED, **_json("RequestOut")},
                    **_errors(*KEYED, 404, *WRITE),
                    **LONG_URL,
                },
            }
        },
    )
    for operation_id, suffix, what, mime in (
        ("getRequestReport", "/report", "The access report (Art. 15)", "application/json"),
        ("getRequestExport", "/export", "The portability export (Art. 20)", "application/json"),
        (
            "getRequestExportZip",
            "/export.zip",
            "The portability export as CSV files",
            "application/zip",
        ),
    ):
        spec.path(
            path="/requests/{request_id}" + suffix,
            operations={
                "get": {
                    "operationId": operation_id,
                    "summary": what + "; available until result.expires_at, to the key that "
                    "filed the request. Never cached.",
                    "security": secured,
                    "parameters": [request_id],
                    "responses": {
                        "200": {"description": what, "content": {mime: {}}},
                        **_errors(*KEYED, 404),
                        **LONG_URL,
                    },
                }
            },
        )
    spec.path(
        path="/statements",
        operations={
            "post": {
                "operationId": "holdingsStatement",
                "summary": "Public, rate-limited: a former member's record key in the body -> "
                "a freshly signed holdings statement (JWS, typ lethe-statement+jws). Unknown "
                "and malformed keys get the same 404.",
                "security": [],
                "requestBody": {"required": True, **_json("StatementIn")},
                "responses": {
                    "200": {
                        "description": "The statement",
                        **_json(
                            {
                                "type": "object",
                                "required": ["statement", "holds_nothing", "held", "as_of"],
                                "properties": {
                                    "statement": {
                                        "type": "string",
                                        "description": "JWS compact serialization",
                                    },
                                    "holds_nothing": {"type": "boolean"},
                                    "held": {"type": "array", "items": {"type": "object"}},
                                    "as_of": {"type": "string", "format": "date-time"},
                                },
                            }
                        ),
                    },
                    **_errors(404, 413, 422, 429),
                },
            }
        },
    )
    spec.path(
        path="/openapi.json",
        operations={
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", **_json({"type": "object"})},
                },
            }
        },
    )
    doc = spec.to_dict()
    components = doc["components"]["schemas"]
    components["RecordOut"]["properties"]["kind"] = RECORD_KIND
    components["RequestOut"]["properties"]["extended"] = EXTENDED
    components["RequestOut"]["properties"]["result"] = RESULT
    # The cross-field rules the schemas' validators check, stated from the same tables.
    components["RequestIn"].update(_request_rules())
    components["ConsentIn"].update(_consent_rules())
    return doc
