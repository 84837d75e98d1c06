"""Marshmallow schemas of the API, in pairs: ``...In`` loads (unknown fields refused),
``...Out`` dumps. Writable fields are exactly those listed in an ``In`` schema."""

from datetime import UTC

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from rights import requests
from storage.models import RequestType
from storage.models.platform import AWARD_STATUSES, CONSENT_STATUSES, DISCLOSURE_STATUSES


class AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset, loaded as UTC. One whose UTC value falls outside
    the years 1-9999 (e.g. 9999-12-31T23:59-23:00) is invalid input, not a crash later."""

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        try:
            return loaded.astimezone(UTC)
        except OverflowError as exc:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from exc


# Identifiers the platform sends: printable, no surrounding or inner blanks.
ID = {
    "validate": [
        validate.Length(min=1, max=80),
        validate.Regexp(r"^\S+\Z", error="must be an identifier without spaces"),
    ]
}
TEXT = {"validate": validate.Length(max=2000)}


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ProvenanceIn(StrictSchema):
    """Who sends a record: the source system and the process or person that wrote it."""

    source = fields.String(required=True, validate=validate.Length(min=1, max=80))
    actor = fields.String(required=True, validate=validate.Length(min=1, max=120))


class MemberIn(ProvenanceIn):
    member_id = fields.String(required=True, **ID)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    handle = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    status = fields.String(load_default="active", validate=validate.OneOf(["active", "closed"]))
    joined_at = AwareDateTime(load_default=None, allow_none=True)
    closed_at = AwareDateTime(load_default=None, allow_none=True)
    # The platform asserts the person signed up anew after an erasure of theirs.
    new_signup = fields.Boolean(load_default=False)


class PerkAwardIn(ProvenanceIn):
    award_id = fields.String(required=True, **ID)
    member_id = fields.String(required=True, **ID)
    perk_id = fields.String(required=True, **ID)
    perk_item = fields.String(load_default=None, validate=validate.Length(max=200))
    brand_id = fields.String(required=True, **ID)
    brand_name = fields.String(load_default=None, validate=validate.Length(max=120))
    campaign_id = fields.String(load_default=None, allow_none=True, **ID)
    campaign_name = fields.String(load_default=None, validate=validate.Length(max=120))
    # strict: 1.5 is refused, not silently truncated to 1
    value_cents = fields.Integer(
        load_default=0, strict=True, validate=validate.Range(min=0, max=10**9)
    )
    currency = fields.String(load_default="USD", validate=validate.Regexp(r"^[A-Z]{3}\Z"))
    status = fields.String(required=True, validate=validate.OneOf(AWARD_STATUSES))
    status_at = AwareDateTime(load_default=None)
    shipped_at = AwareDateTime(load_default=None, allow_none=True)
    received_at = AwareDateTime(load_default=None, allow_none=True)


class DisclosureIn(ProvenanceIn):
    disclosure_id = fields.String(required=True, **ID)
    award_id = fields.String(required=True, **ID)
    status = fields.String(required=True, validate=validate.OneOf(DISCLOSURE_STATUSES))
    listed_at = AwareDateTime(load_default=None)


class PromotionIn(ProvenanceIn):
    promotion_id = fields.String(required=True, **ID)
    member_id = fields.String(required=True, **ID)
    award_id = fields.String(load_default=None, allow_none=True, **ID)
    consent_id = fields.String(load_default=None, allow_none=True, **ID)
    audience = fields.String(required=True, validate=validate.Length(min=1, max=40))
    shown_at = AwareDateTime(load_default=None)
    message = fields.String(load_default=None, allow_none=True, **TEXT)
    uses_likeness = fields.Boolean(load_default=False)


class ConsentIn(ProvenanceIn):
    consent_id = fields.String(required=True, **ID)
    member_id = fields.String(required=True, **ID)
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=60))
    status = fields.String(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    notice_version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=40))
    granted_at = AwareDateTime(load_default=None, allow_none=True)
    withdrawn_at = AwareDateTime(load_default=None, allow_none=True)

    @validates_schema
    def _dates(self, data, **kwargs):
        if data["status"] == "granted" and not data.get("granted_at"):
            raise ValidationError("required when status is granted", "granted_at")
        if data["status"] == "withdrawn" and not data.get("withdrawn_at"):
            raise ValidationError("required when status is withdrawn", "withdrawn_at")


class RecipientIdentifierIn(Schema):
    """What a subscriber calls a member; ``identifier: null`` forgets it."""

    member_id = fields.String(required=True, **ID)
    subscriber_id = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1)
    )
    identifier = fields.String(required=True, allow_none=True, **ID)


class RecordOut(Schema):
    id = fields.Integer()
    external_id = fields.String(data_key="external_id")
    source = fields.String()
    actor = fields.String()
    recorded_at = AwareDateTime()


# Type-specific fields of a rights request, and which types take which.
OBJECTION_PURPOSES = ("direct_marketing", "likeness", "profiling", "legitimate_interests")
RESTRICTION_GROUNDS = (
    "accuracy_contested",
    "unlawful_processing",
    "legal_claims",
    "objection_pending",
)
TYPE_FIELDS = {
    "access": {"reason": False},
    "portability": {"reason": False},
    "rectification": {"records": False, "correction": True, "statement": False, "reason": False},
    "erasure": {"reason": False},
    "restriction": {"records": False, "grounds": True, "correction": False, "reason": False},
    "objection": {"purpose": True, "grounds_text": False},
    "consent_withdrawal": {"consent_purpose": True, "reason": False},
}


class RequestIn(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in RequestType]))
    email = fields.Email(load_default=None, validate=validate.Length(max=254))
    member_id = fields.String(load_default=None, **ID)
    verified = fields.Boolean(load_default=False)
    # Type-specific (see TYPE_FIELDS):
    records = fields.List(
        fields.String(validate=validate.Length(max=120)), validate=validate.Length(max=500)
    )
    correction = fields.String(validate=validate.Length(min=1, max=5000))
    statement = fields.String(validate=validate.Length(max=5000))
    reason = fields.String(validate=validate.Length(max=2000))
    grounds = fields.String(validate=validate.OneOf(RESTRICTION_GROUNDS))
    purpose = fields.String(validate=validate.OneOf(OBJECTION_PURPOSES))
    grounds_text = fields.String(validate=validate.Length(max=5000))
    consent_purpose = fields.String(validate=validate.Length(min=1, max=60))

    @validates_schema
    def _check(self, data, **kwargs):
        errors = {}
        if bool(data.get("email")) == bool(data.get("member_id")):
            errors["email"] = ["give either email or member_id"]
        elif data.get("verified") and not data.get("member_id"):
            # The platform vouches only for its own logged-in member, never for an address.
            errors["verified"] = [
                "only with member_id; requests by email are verified by an emailed link"
            ]
        allowed = TYPE_FIELDS.get(data.get("type"), {})
        for name, required in allowed.items():
            if required and name not in data:
                errors[name] = [f"required for a {data['type']} request"]
        extra = set(data) - {"type", "email", "member_id", "verified"} - set(allowed)
        for name in extra:
            errors[name] = [f"not used by a {data.get('type')} request"]
        if errors:
            raise ValidationError(errors)


def request_details(data: dict) -> dict:
    """The type-specific part of a loaded :class:`RequestIn`."""
    return {k: v for k, v in data.items() if k in TYPE_FIELDS[data["type"]]}


class RequestOut(Schema):
    id = fields.String()
    reference = fields.String()
    type = fields.String()
    status = fields.String()
    channel = fields.String()
    received_at = AwareDateTime()
    due_at = AwareDateTime()
    extended = fields.Method("_extended")
    completed_at = AwareDateTime(allow_none=True)  # null until completed

    def _extended(self, obj):
        if obj.extended_at is None:
            return None
        return {
            "at": obj.extended_at.isoformat(),
            "months": obj.extension_months,
            "reason": requests.extension_reason(obj),
        }


class RequestListIn(StrictSchema):
    status = fields.String(
        validate=validate.OneOf(
            [
                "received",
                "awaiting_verification",
                "open",
                "in_progress",
                "completed",
                "refused",
                "withdrawn",
            ]
        )
    )
    type = fields.String(validate=validate.OneOf([t.value for t in RequestType]))
    channel = fields.String(validate=validate.OneOf(["web", "api", "officer"]))
    due_before = AwareDateTime()
    due_after = AwareDateTime()
    # Bounded so the offset fits a 64-bit integer (SQLite and PostgreSQL refuse larger ones).
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**6))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class StatementIn(StrictSchema):
    record_key = fields.String(required=True, validate=validate.Length(min=1, max=100))


class DisclosureExportIn(StrictSchema):
    brand = fields.String(validate=validate.Length(min=1, max=80))
    campaign = fields.String(validate=validate.Length(min=1, max=80))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
