"""The Data Rights Protocol's signed messages (DRP 1.0 §2.01, §3.07): a request body is
``base64(signature || JSON)`` — libsodium's combined mode (``crypto_sign``), Ed25519 — sent as
text/plain. :func:`open_message` checks it in the order the protocol says: it decodes from
base64, its signature verifies with the agent's key, the ``agent-id`` claim is that agent,
the ``business-id`` claim is this business, the time is after ``issued-at`` and before
``expires-at``. Every failure is a :class:`Refused` with a short machine reason (for the audit
trail) — never the message's content.

Decisions where the protocol is silent: ``issued-at`` may be up to a minute in the future (a
clock a little ahead); a message may live at most a day (``expires-at`` − ``issued-at``), so
that the replay memory (registry.py) stays small; timestamps are ISO 8601 (a ``Z`` accepted,
none without a time zone); bodies over 64 KiB are refused before they are decoded.
"""

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

MAX_BODY = 64 * 1024
SKEW = timedelta(minutes=1)
LONGEST = timedelta(days=1)


class Refused(Exception):
    """A message the protocol says to refuse; ``reason`` names why (no content in it)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Message:
    claims: dict
    digest: str  # SHA-256 of the signed bytes: the same message sent twice has the same one
    expires_at: datetime


def parse_verify_key(text: str) -> bytes:
    """An agent's verify key as a service directory gives it — base64 (DRP 1.0) or hex (the
    implementation guide's older form) — as 32 raw bytes; ValueError otherwise."""
    text = (text or "").strip()
    try:
        if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
            raw = bytes.fromhex(text)
        else:
            raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the verify key is neither base64 nor hex") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 verify key is 32 bytes")
    return raw


def timestamp(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a timestamp")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a timestamp without a time zone")
    return parsed.astimezone(UTC)


def open_signed(body: bytes, verify_key: bytes) -> tuple[dict, str]:
    """The first three checks of any signed message: it decodes from base64, its signature
    verifies with ``verify_key``, it holds a JSON object. The claims, and the digest of the
    signed bytes. (A revocation's ``{"reason"}`` has no other claims, DRP 1.0 §2.04.)"""
    if len(body) > MAX_BODY:
        raise Refused("too_large")
    try:
        signed = base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("not_base64") from None
    try:
        payload = VerifyKey(verify_key).verify(signed)
    except (BadSignatureError, ValueError, TypeError):
        raise Refused("bad_signature") from None
    try:
        claims = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused("malformed") from None
    if not isinstance(claims, dict):
        raise Refused("malformed")
    return claims, hashlib.sha256(signed).hexdigest()


def open_message(
    body: bytes, verify_key: bytes, *, agent_id: str, business_id: str, now: datetime
) -> Message:
    """The checked claims of a signed message from ``agent_id``, or :class:`Refused`."""
    claims, digest = open_signed(body, verify_key)
    if claims.get("agent-id") != agent_id:
        raise Refused("wrong_agent")
    if claims.get("business-id") != business_id:
        raise Refused("wrong_business")
    try:
        issued, expires = timestamp(claims.get("issued-at")), timestamp(claims.get("expires-at"))
    except (ValueError, OverflowError):
        raise Refused("malformed") from None
    if issued > now + SKEW:
        raise Refused("not_yet_valid")
    if now >= expires:
        raise Refused("expired")
    if expires - issued > LONGEST:
        raise Refused("too_long_lived")
    return Message(claims, digest, expires)
