"""Domain errors. Messages are written for the person reading them and never carry personal
data; the web layer turns them into the API's JSON error shape or a form message."""


class RightsError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class Invalid(RightsError):
    status = 422
    code = "invalid"


class Forbidden(RightsError):
    status = 403
    code = "forbidden"


class NotFound(RightsError):
    status = 404
    code = "not_found"


class Conflict(RightsError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class TokenInvalid(RightsError):
    """Unknown, used or expired: one answer for all three, so nothing is revealed."""

    status = 400
    code = "token_invalid"


class InvalidSignature(RightsError):
    """A receipt or statement that does not verify. ``reason`` says why, for callers and tests:
    ``malformed`` (not a compact JWS of ours), ``unknown_key`` (its ``kid`` is not in the key
    set), ``bad_signature`` (altered, or not signed by that key) or ``wrong_type`` (a valid
    signature on another kind of document)."""

    status = 400
    code = "invalid_signature"

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason
