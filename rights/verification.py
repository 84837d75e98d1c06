"""Single-use emailed links: 256-bit random tokens, stored as SHA-256, compared in constant
time, expiring, consumed only by POST (mail scanners follow GET links)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from rights.errors import TokenInvalid
from storage.clock import utcnow
from storage.db import db
from storage.models import RightsRequest, VerificationToken


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(request: RightsRequest, purpose: str) -> str:
    """A new token for ``request``; only its hash is stored. Returns the token itself."""
    token = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config["VERIFICATION_TTL_HOURS"])
    db.session.add(
        VerificationToken(
            request_id=request.id,
            purpose=purpose,
            token_hash=_hash(token),
            expires_at=utcnow() + ttl,
        )
    )
    db.session.flush()
    return token


def peek(token: str, purpose: str) -> RightsRequest:
    """The request a still-valid token belongs to, without using the token up."""
    return _valid(token, purpose)[1]


def consume(token: str, purpose: str) -> RightsRequest:
    """Use a token once. Unknown, used, expired and wrong-purpose tokens all raise the same."""
    row, request = _valid(token, purpose)
    row.used_at = utcnow()
    db.session.flush()
    return request


def _valid(token: str, purpose: str) -> tuple[VerificationToken, RightsRequest]:
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise TokenInvalid("This link is not valid any more.")
    digest = _hash(token)
    row = db.session.execute(
        select(VerificationToken).where(VerificationToken.token_hash == digest)
    ).scalar_one_or_none()
    if (
        row is None
        or not hmac.compare_digest(row.token_hash, digest)
        or row.purpose != purpose
        or row.used_at is not None
        or row.expires_at <= utcnow()
    ):
        raise TokenInvalid("This link is not valid any more.")
    return row, db.session.get(RightsRequest, row.request_id)
