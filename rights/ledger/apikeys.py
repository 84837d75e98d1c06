"""API keys for the platform's services: ``lethe_<prefix>_<secret>``, 256 bits of secret.

Only SHA-256 of the whole key is stored (the key is random, so a slow hash adds nothing); the
prefix finds the row and the hashes are compared in constant time. An API call reads its key
once, and writes its last use at most once a minute, outside its own transaction.
"""

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from rights.errors import Invalid, NotFound
from rights.ledger import audit
from storage.clock import utcnow
from storage.db import db
from storage.models import ApiKey

SCOPES = {
    "requests:write": "file rights requests for members",
    "requests:verified": "file requests as already verified (the platform vouches for its "
    "logged-in member)",
    "requests:read": "read the requests this key filed, and their results",
    "requests:read:all": "read every request's metadata (type, status, dates; never what "
    "people wrote, and never a result)",
    "records:write": "ingest members, perk awards, disclosures, promotions and consents",
    "disclosures:read": "export the disclosure list",
    "deliveries:confirm": "confirm that a webhook delivery was acted on (subscribers)",
}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.replace(",", " ").split() if s.strip()})
    if scopes == ["*"]:
        return sorted(SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise Invalid(
            f"Unknown scope(s): {', '.join(unknown) or '(none given)'}. "
            f"Known: {', '.join(sorted(SCOPES))}, or '*' for all.",
            {"scopes": ["unknown scope"]},
        )
    return scopes


def create(name: str, scopes: list[str], *, actor: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself (shown once, never stored)."""
    if not name.strip():
        raise Invalid("Give the key a name.", {"name": ["required"]})
    prefix = secrets.token_hex(6)
    key = f"lethe_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name.strip(), prefix=prefix, key_hash=_hash(key), scopes=scopes)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "apikey.created", target=f"apikey:{row.id}", details={"scopes": scopes})
    return row, key


# Compared against when no key has the prefix given, so that a miss costs what a hit does.
_NO_SUCH_KEY = _hash("lethe_x_" + "0" * 43)


def authenticate(key: str) -> ApiKey | None:
    """The live key matching ``key``, or None: one query by the key's prefix (unique, so
    indexed) in the request's session — the row the request then goes on using. The stored
    hash is compared in constant time. Reads only: the use is recorded, at most once a
    minute, by :func:`use_to_record`."""
    if not isinstance(key, str) or not key.isascii() or not key.isprintable():
        return None  # no key of ours, and PostgreSQL refuses NUL in a query
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "lethe":
        return None
    found = db.session.execute(select(ApiKey).where(ApiKey.prefix == parts[1])).scalar_one_or_none()
    expected = found.key_hash if found is not None else _NO_SUCH_KEY
    if not hmac.compare_digest(_hash(key), expected) or found is None or found.revoked_at:
        return None
    return found


# How fresh a key's "last used" is kept: the dashboard shows it to the minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)

log = logging.getLogger("lethe.apikeys")


def use_to_record(key: ApiKey, now: datetime | None = None) -> Callable[[], None] | None:
    """What records this use of ``key``: None while its last recorded use is under a minute
    old (every call but one a minute, per key), else a function for the caller to run once
    the request's own transaction is over — web/api/keys.py runs it after the answer.

    Never in the request's transaction: there the UPDATE held the key's row until the
    request ended, so every request of one key queued behind it, and on PostgreSQL it
    deadlocked against the audit chain's lock. Nor beside it while it is open: that cost the
    answer a second connection and a commit, and on SQLite, once the request has written,
    the UPDATE would wait for the write lock its own request holds."""
    now = now or utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return None
    return functools.partial(_record_use, db.engine, key.id, now)


def _record_use(engine: Engine, key_id: int, now: datetime) -> None:
    """One short transaction on a connection of its own; conditional, so that requests of one
    key that all found it due write it once. A failure is logged, not raised: the answer has
    gone, and the key's next call tries again."""
    stale = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_RESOLUTION)
    try:
        with engine.begin() as conn:
            conn.execute(update(ApiKey).where(ApiKey.id == key_id, stale).values(last_used_at=now))
    except SQLAlchemyError as exc:
        log.warning("API key %s: its last use was not recorded (%s)", key_id, type(exc).__name__)


def has_scope(key: ApiKey, scope: str) -> bool:
    return scope in (key.scopes or [])


def all_keys() -> list[ApiKey]:
    return list(db.session.execute(select(ApiKey).order_by(ApiKey.id)).scalars())


def revoke(key_id: int, *, actor: str) -> ApiKey:
    """Revoke a key at once (flushes); revoking twice changes nothing."""
    row = db.session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("No such API key.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(actor, "apikey.revoked", target=f"apikey:{row.id}")
    return row
