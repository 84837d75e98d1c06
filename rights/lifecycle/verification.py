"""Single-use emailed links: 256-bit random tokens, stored as SHA-256, compared in constant
time, expiring, consumed only by POST (mail scanners follow GET links).

Single use holds under concurrency: a link is spent by one conditional ``UPDATE … WHERE
used_at IS NULL``, and only the transaction whose update changed the row acts on it. Two
browsers posting the same link at once both reach the UPDATE; the database lets one change the
row, and the other (on PostgreSQL, after waiting for the first to commit and re-reading the row)
changes nothing and is told the link is not valid any more.

Purposes: ``verify`` confirms a request; ``resume`` opens a request's page in the browser that
spends it — minted afresh for every notice that leads to the request (a completion, a question,
a download), so that the link in the email is all it takes: no second email to ask for one.

Every link lives ``VERIFICATION_TTL_HOURS`` (24 by default), a resume link as long as a
confirmation link and no longer. It is a bearer credential: whoever holds the email opens the
request's page, its downloads (a whole access report) and its receipt, and a mailbox is read
long after the fact by more than its owner. A notice says in its own words what was done, so a
link that has lapsed costs the subject nothing they need to know; and a lapsed or spent link
opens a page that sends a fresh one, in one step, to the address on the request.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

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
    """Use a token once, atomically: of any number of callers at once, one gets the request
    and the others raise. Unknown, used, expired and wrong-purpose tokens all raise the same."""
    row, request = _valid(token, purpose)
    now = utcnow()
    spent = db.session.execute(
        update(VerificationToken)
        .where(
            VerificationToken.id == row.id,
            VerificationToken.used_at.is_(None),
            VerificationToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise TokenInvalid("This link is not valid any more.")
    db.session.refresh(row)
    # The request as it is now: another holder of a link may have changed it meanwhile.
    db.session.refresh(request)
    return request


def reference_of(token: str) -> str | None:
    """The reference of the request a token was issued for — used, expired or not — so that
    the page saying a link is no longer valid can offer a fresh one for that request; None
    for a token never issued. (Only the email it was sent in held the token, and that email
    names the reference too.)"""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    row = db.session.execute(
        select(VerificationToken).where(VerificationToken.token_hash == _hash(token))
    ).scalar_one_or_none()
    request = db.session.get(RightsRequest, row.request_id) if row is not None else None
    return request.reference if request is not None else None


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
