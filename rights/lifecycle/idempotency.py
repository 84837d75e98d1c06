"""``Idempotency-Key`` on POST: the first answer is stored and replayed on retry.

A retry with the same key and body gets the stored answer; the same key with a different body
is a client error (422), never a second record. The stored row is written in the same
transaction as the record, so a crash leaves both or neither.
"""

import hashlib
import json
import re

from sqlalchemy import select

from rights.errors import Invalid
from storage.db import db, lock_key, serialise
from storage.models import IdempotencyRecord

# What a key may be, stated the same way in the OpenAPI document: 1 to 200 printable ASCII
# characters; spaces only inside (HTTP drops them at either end).
KEY_MAX_LENGTH = 200
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"


def body_hash(body: object) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def lookup(api_key_id: int, key: str, method: str, path: str, body: object):
    """The stored (status, response) for this key, None if new; raises on a reused key."""
    if len(key) > KEY_MAX_LENGTH or not re.fullmatch(KEY_PATTERN, key):
        raise Invalid(
            "Idempotency-Key must be 1 to 200 printable ASCII characters, not starting or "
            "ending with a space.",
            {"Idempotency-Key": ["1 to 200 printable ASCII characters"]},
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


def claim(api_key_id: int, key: str) -> None:
    """Serialise the attempts that carry one key, for the rest of the transaction: taken
    before :func:`lookup`, so a concurrent retry waits for the first attempt's commit and then
    finds its answer, instead of racing it to write the same records."""
    serialise(db.session, lock_key("idempotency", api_key_id, key))
