"""The OpenAPI 3.1 document of ``/api/v1``, generated from the same marshmallow schemas the
views load and dump with (apispec), so the contract cannot drift from the code."""

from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from rights.apikeys import SCOPES
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


def _errors(*codes: int) -> dict:
    text = {
        400: "Bad request",
        401: "No valid API key",
        403: "Key lacks the scope",
        404: "Not found",
        409: "Conflict",
        422: "Invalid input (see error.fields)",
        429: "Rate limited",
    }
    return {
        str(c): {"description": text[c], **_json({"$ref": "#/components/schemas/Error"})}
        for c in codes
    }


IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying a POST with the same key and body replays the first answer "
    "(header Idempotent-Replayed: true); the same key with another body is refused (422).",
    "schema": {"type": "string", "maxLength": 200},
}

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
    "/members": ("MemberIn", "Create or update a member (email, name, handle, address)."),
    "/perk-awards": ("PerkAwardIn", "Create or update a perk award."),
    "/disclosures": ("DisclosureIn", "Create or update an FTC disclosure-list entry."),
    "/promotions": ("PromotionIn", "Record a use of a member's name or likeness."),
    "/consents": ("ConsentIn", "Record a consent given or withdrawn."),
}


@cache
def openapi_document() -> dict:
    spec = APISpec(
        title="Lethe API",
        version="1.0.0",
        openapi_version="3.1.0",
        info={
            "description": "Data subject rights for the perk platform. Errors always have "
            'the shape {"error": {"code", "message", "fields"}}.'
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
    for path, (schema, summary) in INGEST.items():
        spec.path(
            path=path,
            operations={
                "post": {
                    "summary": summary + " Needs scope records:write.",
                    "security": secured,
                    "parameters": [IDEMPOTENCY],
                    "requestBody": {"required": True, **_json(schema)},
                    "responses": {
                        "201": {"description": "Created", **_json("RecordOut")},
                        "200": {"description": "Updated", **_json("RecordOut")},
                        **_errors(401, 403, 409, 422),
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
                "summary": "Record what a webhook subscriber calls a member (its own customer "
                "id), sent in that subscriber's events; identifier null forgets it. Needs scope "
                "records:write.",
                "security": secured,
                "parameters": [IDEMPOTENCY],
                "requestBody": {"required": True, **_json("RecipientIdentifierIn")},
                "responses": {
                    "200": {
                        "description": "Recorded, or forgotten",
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
                    **_errors(401, 403, 409, 422),
                },
            }
        },
    )
    spec.path(
        path="/deliveries/{delivery_id}/confirm",
        operations={
            "post": {
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
                    **_errors(401, 403, 404, 422),
                },
            }
        },
    )
    spec.path(
        path="/disclosures/export",
        operations={
            "get": {
                "summary": "The FTC disclosure list (scope disclosures:read): entries whose "
                "award was received, leaving out anything withdrawn, contested, restricted or "
                "erased. Streamed.",
                "security": secured,
                "parameters": [
                    {
                        "name": "brand",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "campaign",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The list",
                        "content": {
                            "application/json": {"schema": DISCLOSURE_LIST},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(401, 403, 422),
                },
            }
        },
    )
    spec.path(
        path="/requests",
        operations={
            "post": {
                "summary": "File a rights request for a member (scope requests:write; "
                "verified=true needs requests:verified).",
                "security": secured,
                "parameters": [IDEMPOTENCY],
                "requestBody": {"required": True, **_json("RequestIn")},
                "responses": {
                    "201": {"description": "Filed", **_json("RequestOut")},
                    **_errors(401, 403, 422),
                },
            },
            "get": {
                "summary": "List requests, newest first (scope requests:read).",
                "security": secured,
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": t}}
                    for n, t in (
                        ("status", "string"),
                        ("type", "string"),
                        ("channel", "string"),
                        ("due_before", "string"),
                        ("due_after", "string"),
                        ("page", "integer"),
                        ("per_page", "integer"),
                    )
                ],
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
                    **_errors(401, 403, 422),
                },
            },
        },
    )
    spec.path(
        path="/requests/{request_id}",
        operations={
            "get": {
                "summary": "A request; once completed, 'result' links to the report or export.",
                "security": secured,
                "parameters": [request_id],
                "responses": {
                    "200": {"description": "The request", **_json("RequestOut")},
                    **_errors(401, 403, 404),
                },
            }
        },
    )
    spec.path(
        path="/requests/{request_id}/withdraw",
        operations={
            "post": {
                "summary": "Withdraw a request at the member's wish (scope requests:write); the "
                "subject is told.",
                "security": secured,
                "parameters": [request_id, IDEMPOTENCY],
                "responses": {
                    "200": {"description": "Withdrawn", **_json("RequestOut")},
                    **_errors(401, 403, 404, 409, 422),
                },
            }
        },
    )
    for suffix, what, mime in (
        ("/report", "The access report (Art. 15)", "application/json"),
        ("/export", "The portability export (Art. 20)", "application/json"),
        ("/export.zip", "The portability export as CSV files", "application/zip"),
    ):
        spec.path(
            path="/requests/{request_id}" + suffix,
            operations={
                "get": {
                    "summary": what + "; available until result.expires_at. Never cached.",
                    "security": secured,
                    "parameters": [request_id],
                    "responses": {
                        "200": {"description": what, "content": {mime: {}}},
                        **_errors(401, 403, 404),
                    },
                }
            },
        )
    spec.path(
        path="/statements",
        operations={
            "post": {
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
                    **_errors(404, 422, 429),
                },
            }
        },
    )
    spec.path(
        path="/openapi.json",
        operations={
            "get": {
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    )
    doc = spec.to_dict()
    components = doc["components"]["schemas"]
    components["RecordOut"]["properties"]["kind"] = RECORD_KIND
    components["RequestOut"]["properties"]["extended"] = EXTENDED
    components["RequestOut"]["properties"]["result"] = RESULT
    return doc
