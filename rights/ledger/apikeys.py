"""API keys for the platform's services: ``lethe_<prefix>_<secret>``, 256 bits of secret.

Only SHA-256 of the whole key is stored (the key is random, so a slow hash adds nothing); the
prefix finds the row and the hashes are compared in constant time.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import or_, select, update

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


def authenticate(key: str) -> ApiKey | None:
    """The live key matching ``key``, or None. Constant-time on the secret part.

    Call it first thing in a request, before the session holds a connection: the key is
    looked up, and its last use recorded, on a connection of its own (see :func:`_touch`)."""
    if not isinstance(key, str) or not key.isascii() or not key.isprintable():
        return None  # no key of ours, and PostgreSQL refuses NUL in a query
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "lethe":
        return None
    with db.engine.begin() as conn:
        found = conn.execute(
            select(ApiKey.id, ApiKey.key_hash, ApiKey.revoked_at, ApiKey.last_used_at).where(
                ApiKey.prefix == parts[1]
            )
        ).first()
        candidate = _hash(key)
        expected = found.key_hash if found else _hash("lethe_x_" + "0" * 43)
        if not hmac.compare_digest(candidate, expected) or found is None or found.revoked_at:
            return None
        _touch(conn, found.id, found.last_used_at)
    return db.session.get(ApiKey, found.id)


LAST_USED_RESOLUTION = timedelta(minutes=1)


def _touch(conn, key_id: int, last_used_at) -> None:
    """Record when the key was last used — to the minute, in a short transaction of its own.
    Written in the request's transaction it held the key's row lock until commit: every request
    of one key queued behind it, and on PostgreSQL it deadlocked against the audit chain's lock
    (one request held the row and waited for the chain, another the reverse)."""
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return
    conn.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


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
