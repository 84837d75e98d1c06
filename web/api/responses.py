"""Marshmallow schemas of what the API answers: every JSON body is dumped through one of these,
and the OpenAPI document states each from the same class, so an answer cannot say more or
other than the contract.

A top-level schema is a component of the document (named after its class; ErrorOut is the
contract's "Error"). A :class:`Part` is a piece of one answer (a completed request's result,
an extension, an error's body, a disclosure-list entry) and is written in place where it is
used, where a reader of the document looks for it.
"""

from marshmallow import Schema, fields, validate

from storage.models import Consent, Disclosure, Member, PerkAward, Promotion
from web.api.schemas import AwareDateTime


class Part(Schema):
    """A piece of an answer, documented in place rather than as a component of its own."""


class ErrorBody(Part):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Named "fields" in the answer (a schema's own ``fields`` attribute cannot be a field).
    field_errors = fields.Dict(
        data_key="fields",
        attribute="fields",
        required=True,
        metadata={"description": "field -> what is wrong with it (422)"},
    )


class ErrorOut(Schema):
    """Every error the API answers: ``{"error": {"code", "message", "fields"}}``."""

    error = fields.Nested(ErrorBody, required=True)


# The kind an ingest answer names, by the record's model.
RECORD_KINDS = {
    Member: "member",
    PerkAward: "perk_award",
    Disclosure: "disclosure",
    Promotion: "promotion",
    Consent: "consent",
}


class RecordOut(Schema):
    """A platform record as ingested: Lethe's id for it, the platform's, and its provenance."""

    id = fields.Integer(required=True)
    external_id = fields.String(required=True)
    source = fields.String(required=True)
    actor = fields.String(required=True)
    recorded_at = AwareDateTime(required=True)
    kind = fields.Function(
        lambda record: RECORD_KINDS[type(record)],
        required=True,
        metadata={"type": "string", "enum": list(RECORD_KINDS.values())},
    )


class ExtensionOut(Part):
    """The one extension of a request's deadline; its reason only to the key that filed it."""

    at = AwareDateTime(required=True)
    months = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null under the CCPA"}
    )
    days = fields.Integer(metadata={"description": "45: the CCPA's one extension"})
    reason = fields.String(allow_none=True)


class LogPlacementOut(Part):
    """Where the public transparency log has a receipt (README, "The transparency log")."""

    leaf_index = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "From 0; null while the receipt waits to be appended"},
    )
    tree_size = fields.Integer(
        required=True, metadata={"description": "The latest signed checkpoint's size"}
    )
    leaf_hash = fields.String(
        required=True,
        metadata={"description": "hex SHA-256(0x00 || SHA-256(receipt)): ask for its proof"},
    )


class ResultOut(Part):
    """A completed request's result (what RequestOut.result says of it)."""

    completed_at = AwareDateTime(required=True)
    report_url = fields.String()
    export_json_url = fields.String()
    export_zip_url = fields.String()
    expires_at = AwareDateTime()
    downloads = fields.String(validate=validate.OneOf(["expired"]))
    receipt = fields.String(metadata={"description": "JWS, typ lethe-receipt+jws"})
    record_key = fields.String(metadata={"description": "shown once"})
    transparency_log = fields.Nested(LogPlacementOut)


class RequestOut(Schema):
    """A rights request as the asking key may see it (web/api/requests_views.py decides)."""

    id = fields.String(required=True)
    reference = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    received_at = AwareDateTime(required=True)
    due_at = AwareDateTime(required=True)
    extended = fields.Nested(
        ExtensionOut,
        required=True,
        allow_none=True,
        metadata={"description": "The one extension (Art. 12(3)), if any."},
    )
    completed_at = AwareDateTime(required=True, allow_none=True)  # null until completed
    result = fields.Nested(
        ResultOut,
        metadata={
            "description": "Present once the request is completed. To the key that filed it: "
            "for access a link to the report, for portability links to the JSON and zip "
            "exports (until expires_at; then downloads is 'expired'), for erasure the signed "
            "deletion receipt, where the public transparency log has it, and, on the first "
            "read only, the record key."
        },
    )


class RequestPageOut(Schema):
    """One page of a request list, newest first."""

    items = fields.List(fields.Nested(RequestOut), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class RecipientIdentifierOut(Schema):
    """What a subscriber calls a member: recorded, or forgotten (identifier null)."""

    subscriber_id = fields.Integer(required=True)
    recorded = fields.Boolean(required=True)


class DeliveryConfirmationOut(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)
    confirmed_at = AwareDateTime(required=True)


class StatementOut(Schema):
    """A former member's holdings statement, freshly signed, and what it says."""

    statement = fields.String(required=True, metadata={"description": "JWS compact serialization"})
    holds_nothing = fields.Boolean(required=True)
    held = fields.List(fields.Dict(), required=True)
    as_of = fields.String(required=True, metadata={"format": "date-time"})


class DisclosureEntry(Part):
    disclosure_id = fields.String()
    member_id = fields.String()
    handle = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    perk = fields.String()
    brand_id = fields.String()
    campaign_id = fields.String(allow_none=True)
    received_at = fields.String(metadata={"format": "date-time"})
    listed_at = fields.String(metadata={"format": "date-time"})


class DisclosureListOut(Schema):
    """The FTC disclosure list as JSON. Streamed as it is read, so it is written by
    rights.recipients.disclosure_list.stream_json rather than dumped; this states its shape
    (tests/test_openapi.py checks a real export against it)."""

    generated_at = fields.String(required=True, metadata={"format": "date-time"})
    brand = fields.String(required=True, allow_none=True)
    campaign = fields.String(required=True, allow_none=True)
    entries = fields.List(fields.Nested(DisclosureEntry), required=True)
