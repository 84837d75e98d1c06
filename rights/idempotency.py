"""``Idempotency-Key`` on POST: the first answer is stored and replayed on retry.

A retry with the same key and body gets the stored answer; the same key with a different body
is a client error (422), never a second record. The stored row is written in the same
transaction as the record, so a crash leaves both or neither.
"""

import hashlib
import json

from sqlalchemy import select

from rights.errors import Invalid
from storage.db import db
from storage.models import IdempotencyRecord


def body_hash(body: object) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def lookup(api_key_id: int, key: str, method: str, path: str, body: object):
    """The stored (status, response) for this key, None if new; raises on a reused key."""
    if not key or len(key) > 200 or not key.isprintable():
        raise Invalid(
            "Idempotency-Key must be 1 to 200 printable characters (no control characters).",
            {"Idempotency-Key": ["1 to 200 printable characters"]},
        )
    row = db.session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.method != method or row.path != path or row.body_hash != body_hash(body):
        raise Invalid(
            "This Idempotency-Key was already used for a different request.",
            {"Idempotency-Key": ["reused with a different request"]},
        )
    return row.status_code, row.response


def remember(
    api_key_id: int, key: str, method: str, path: str, body: object, status: int, response: dict
) -> None:
    db.session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            method=method,
            path=path,
            body_hash=body_hash(body),
            status_code=status,
            response=response,
        )
    )
    db.session.flush()
