"""Marshmallow schemas of what the API takes: each ``...In`` loads a body or a query string
(unknown fields refused). Writable fields are exactly those listed in an ``In`` schema. (What
the API answers is dumped through web/api/responses.py.)

The input rules live here and nowhere else: the OpenAPI document is generated from these
schemas (web/api/openapi.py), and the public web form loads through :class:`RequestIn` too.
So every rule is written to mean the same to the server (Python) and in the document
(JSON Schema, whose regular expressions are ECMA-262): patterns are checked with
``fullmatch`` and use no Python-only syntax; booleans are only JSON true/false; text never
holds NUL or an unpaired surrogate.
"""

import re
from datetime import UTC

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from rights.erasure import record_keys
from storage.models import RequestType
from storage.models.platform import AWARD_STATUSES, CONSENT_STATUSES, DISCLOSURE_STATUSES
from web.validation import clean_text


class Pattern(validate.Regexp):
    """A regular expression that means the same in Python and in ECMA-262, where the document
    states it. Checked with ``fullmatch``: Python's ``$`` also matches before a trailing
    newline, ECMA-262's does not."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# Blanks in either dialect, spelled out: Python's \s (str.isspace) also takes \x1c-\x1f and
# \x85, ECMA-262's \s also takes \ufeff, so neither \s nor \S is used.
BLANKS = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Identifiers the platform sends: no blanks anywhere (so none at either end), no NUL.
ID_PATTERN = rf"^[^\x00{BLANKS}]+$"
# Free text: anything but NUL (unpaired surrogates, which no pattern can state, are refused too).
TEXT_PATTERN = r"^[^\x00]*$"


class Text(fields.String):
    """A string that can be stored: no NUL and no unpaired surrogate (PostgreSQL refuses the
    one, UTF-8 cannot hold the other). The document states it as a pattern, unless the field
    has its own pattern or a list of choices."""

    default_error_messages = {
        "unclean": "must be text without NUL characters or unpaired surrogates",
    }
    documented_pattern: str | None = TEXT_PATTERN

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        own = any(isinstance(v, validate.Regexp | validate.OneOf) for v in self.validators)
        if self.documented_pattern and not own:
            self.validators.append(Pattern(self.documented_pattern))

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not clean_text(text):
            raise self.make_error("unclean")
        return text


class Email(Text, fields.Email):
    """An email address (format email), clean like :class:`Text`."""

    documented_pattern = None


class Boolean(fields.Boolean):
    """Only JSON ``true`` or ``false``: ``"yes"``, ``"true"``, ``1`` and ``0`` are refused, not
    guessed (the document says ``type: boolean``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


class Integer(fields.Integer):
    """A JSON Schema integer: a JSON number with no fractional part (``4500`` or ``4500.0``);
    ``1.5`` is refused, not truncated, and so are ``true`` and the string ``"4500"``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits, optionally after a minus sign (Python's
    int() would also take " 1", "1_0", "+1" and other scripts' digits)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


# The calendar's first and last day are refused: there an offset can put the UTC value
# outside the years 1-9999 (0001-01-01T00:00:00+05:00, 9999-12-31T23:59:59-23:00).
DATE_TIME_PATTERN = r"^(?!0001-01-01|9999-12-31)[\s\S]*$"


class AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset, loaded as UTC; documented as format date-time
    with DATE_TIME_PATTERN, which the server checks too. A value whose UTC value would fall
    outside the years 1-9999 is invalid input, not a crash later."""

    def __init__(self, *args, **kwargs):
        kwargs["metadata"] = {"pattern": DATE_TIME_PATTERN, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not re.fullmatch(DATE_TIME_PATTERN, value):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        loaded = super()._deserialize(value, attr, data, **kwargs)
        try:
            return loaded.astimezone(UTC)
        except OverflowError as exc:
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from exc


ID = {
    "validate": [
        validate.Length(min=1, max=80),
        Pattern(ID_PATTERN, error="must be an identifier without spaces"),
    ]
}
TEXT = {"validate": validate.Length(max=2000)}


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ProvenanceIn(StrictSchema):
    """Who sends a record: the source system and the process or person that wrote it."""

    source = Text(required=True, validate=validate.Length(min=1, max=80))
    actor = Text(required=True, validate=validate.Length(min=1, max=120))


class MemberIn(ProvenanceIn):
    member_id = Text(required=True, **ID)
    email = Email(required=True, validate=validate.Length(max=254))
    name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    handle = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    address = Text(load_default=None, allow_none=True, validate=validate.Length(max=500))
    status = Text(load_default="active", validate=validate.OneOf(["active", "closed"]))
    joined_at = AwareDateTime(load_default=None, allow_none=True)
    closed_at = AwareDateTime(load_default=None, allow_none=True)
    # The platform asserts the person signed up anew after an erasure of theirs.
    new_signup = Boolean(load_default=False)


class PerkAwardIn(ProvenanceIn):
    award_id = Text(required=True, **ID)
    member_id = Text(required=True, **ID)
    perk_id = Text(required=True, **ID)
    perk_item = Text(load_default=None, validate=validate.Length(max=200))
    brand_id = Text(required=True, **ID)
    brand_name = Text(load_default=None, validate=validate.Length(max=120))
    campaign_id = Text(load_default=None, allow_none=True, **ID)
    campaign_name = Text(load_default=None, validate=validate.Length(max=120))
    # 1.5 is refused, not silently truncated to 1
    value_cents = Integer(load_default=0, validate=validate.Range(min=0, max=10**9))
    currency = Text(load_default="USD", validate=Pattern(r"^[A-Z]{3}$"))
    status = Text(required=True, validate=validate.OneOf(AWARD_STATUSES))
    status_at = AwareDateTime(load_default=None)
    shipped_at = AwareDateTime(load_default=None, allow_none=True)
    received_at = AwareDateTime(load_default=None, allow_none=True)


class DisclosureIn(ProvenanceIn):
    disclosure_id = Text(required=True, **ID)
    award_id = Text(required=True, **ID)
    status = Text(required=True, validate=validate.OneOf(DISCLOSURE_STATUSES))
    listed_at = AwareDateTime(load_default=None)


class PromotionIn(ProvenanceIn):
    promotion_id = Text(required=True, **ID)
    member_id = Text(required=True, **ID)
    award_id = Text(load_default=None, allow_none=True, **ID)
    consent_id = Text(load_default=None, allow_none=True, **ID)
    audience = Text(required=True, validate=validate.Length(min=1, max=40))
    shown_at = AwareDateTime(load_default=None)
    message = Text(load_default=None, allow_none=True, **TEXT)
    uses_likeness = Boolean(load_default=False)


class ConsentIn(ProvenanceIn):
    consent_id = Text(required=True, **ID)
    member_id = Text(required=True, **ID)
    purpose = Text(required=True, validate=validate.Length(min=1, max=60))
    status = Text(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    notice_version = Text(required=True, validate=validate.Length(min=1, max=40))
    channel = Text(required=True, validate=validate.Length(min=1, max=40))
    granted_at = AwareDateTime(load_default=None, allow_none=True)
    withdrawn_at = AwareDateTime(load_default=None, allow_none=True)

    # The date each status needs (the document states the same rule, from this table).
    DATE_FOR_STATUS = {"granted": "granted_at", "withdrawn": "withdrawn_at"}

    @validates_schema
    def _dates(self, data, **kwargs):
        needed = self.DATE_FOR_STATUS.get(data["status"])
        if needed and not data.get(needed):
            raise ValidationError(f"required when status is {data['status']}", needed)


class RecipientIdentifierIn(Schema):
    """What a subscriber calls a member; ``identifier: null`` forgets it."""

    member_id = Text(required=True, **ID)
    subscriber_id = Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    identifier = Text(required=True, allow_none=True, **ID)


# Type-specific fields of a rights request, and which types take which.
OBJECTION_PURPOSES = (
    "direct_marketing",
    "likeness",
    "profiling",
    "legitimate_interests",
    "sale_and_sharing",
)
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
    type = Text(required=True, validate=validate.OneOf([t.value for t in RequestType]))
    email = Email(load_default=None, validate=validate.Length(max=254))
    member_id = Text(load_default=None, **ID)
    verified = Boolean(load_default=False)
    # Type-specific (see TYPE_FIELDS):
    records = fields.List(
        Text(validate=validate.Length(max=120)), validate=validate.Length(max=500)
    )
    correction = Text(validate=validate.Length(min=1, max=5000))
    statement = Text(validate=validate.Length(max=5000))
    reason = Text(validate=validate.Length(max=2000))
    grounds = Text(validate=validate.OneOf(RESTRICTION_GROUNDS))
    purpose = Text(validate=validate.OneOf(OBJECTION_PURPOSES))
    grounds_text = Text(validate=validate.Length(max=5000))
    consent_purpose = Text(validate=validate.Length(min=1, max=60))

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


class QueryIn(StrictSchema):
    """A query string, loaded from ``request.args`` itself: each documented parameter is one
    value, so one given twice is refused rather than all but the first silently dropped."""

    @pre_load
    def _one_value_each(self, data, **kwargs):
        if not hasattr(data, "getlist"):
            return data
        repeated = {k: ["given more than once"] for k in data if len(data.getlist(k)) > 1}
        if repeated:
            raise ValidationError(repeated)
        return data.to_dict()


class RequestListIn(QueryIn):
    status = Text(
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
    type = Text(validate=validate.OneOf([t.value for t in RequestType]))
    channel = Text(validate=validate.OneOf(["web", "api", "officer"]))
    due_before = AwareDateTime()
    due_after = AwareDateTime()
    # Bounded so the offset fits a 64-bit integer (SQLite and PostgreSQL refuse larger ones).
    page = QueryInteger(load_default=1, validate=validate.Range(min=1, max=10**6))
    per_page = QueryInteger(load_default=50, validate=validate.Range(min=1, max=200))


def _no_typo(value: str) -> None:
    # Crockford's check symbol, which no JSON Schema can state: a key with a typo in it is
    # refused here, before anything is looked up.
    if record_keys.has_typo(value):
        raise ValidationError(record_keys.TYPO)


class StatementIn(StrictSchema):
    record_key = Text(
        required=True,
        validate=[validate.Length(min=1, max=100), _no_typo],
        metadata={
            "description": "The record key from the deletion receipt. Case, spaces, dashes "
            "and look-alikes (O and 0; I, L and 1) do not matter. A key whose check symbol "
            "(its last) does not match has a typo in it: refused with 422 before any look-up."
        },
    )


class DisclosureExportIn(QueryIn):
    brand = Text(validate=validate.Length(min=1, max=80))
    campaign = Text(validate=validate.Length(min=1, max=80))
    format = Text(load_default="json", validate=validate.OneOf(["json", "csv"]))
