"""Holdings statements for former members: what is still held, signed, on demand.

The record key from the deletion receipt is the only credential (stored as a hash). A
statement lists every record still held about the person's perks and disclosures (and the
other categories erasure retains), each with its Art. 17(3) exception and ``retain_until``,
read now — so after the retention sweep removes them it says, signed, that nothing is held.
"""

import uuid

from flask import current_app

from rights.access import access
from rights.erasure import erasure
from rights.ledger import audit, signing
from rights.recipients import told, webhooks
from storage import epochs
from storage.clock import utcnow
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import ErasureRun, Receipt, Subject

PLAIN_KINDS = ("text", "datetime", "json", "perk", "award")


def held_records(subject_id: str) -> list[dict]:
    """Retained categories and their rows (plain columns only: the rest was shredded)."""
    out = []
    for cat in (c for c in CATEGORIES if c.erasure.action == "retain"):
        fields = [f for f in cat.fields if f.kind in PLAIN_KINDS]
        rows = []
        for batch in access.iter_rows(cat, subject_id):
            refs = access.lookups(fields, batch)
            for row in batch:
                record = {f.name: access.field_value(cat, f, row, refs) for f in fields}
                record["retain_until"] = access._iso(row.retain_until)
                record["restricted"] = row.restricted_at is not None
                rows.append(record)
        if rows:
            out.append(
                {
                    "category": cat.key,
                    "title": cat.title,
                    "labels": {f.name: f.label for f in fields},
                    "exception": cat.erasure.exception,
                    "records": rows,
                }
            )
    return out


def issue(receipt: Receipt) -> tuple[str, dict]:
    """A freshly signed statement for the person a receipt belongs to (flushes an audit
    entry; names no one)."""
    subject = db.session.execute(
        db.select(Subject).where(Subject.ref == receipt.subject_ref)
    ).scalar_one_or_none()
    # No subject row: the main database was restored from a backup older than the person;
    # then nothing about them is held.
    held = held_records(subject.id) if subject is not None else []
    statement_id = str(uuid.uuid4())
    now = utcnow()
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    claims = {
        "iss": base,
        "sub": receipt.subject_ref,
        "jti": statement_id,
        "iat": int(now.timestamp()),
        "statement_id": statement_id,
        "receipt_id": receipt.id,
        "as_of": now.isoformat(),
        "holds_nothing": not held,
        "held": held,
        # When the person's key (and so every copy of their encrypted data) became unreadable
        # everywhere: the end of the shred epoch it was deleted in, once that epoch's key is
        # destroyed; until then, when it will be.
        **key_unrecoverable(receipt),
        # Who received the data, and whether each has confirmed acting on the erasure (Art. 19):
        # "recipients", each webhook delivery; "told", each recipient the data map names for
        # the categories the receipt lists with records, and how it was told, as of now.
        "recipients": webhooks.recipients_of(receipt.request_id),
        "told": told_of(receipt),
        "jwks_url": f"{base}/.well-known/jwks.json",
    }
    token = signing.sign(claims, signing.STATEMENT_TYP)
    audit.record(
        "former-member",
        "statement.issued",
        subject_ref=receipt.subject_ref,
        target=f"receipt:{receipt.id}",
        details={"held": len(held)},
    )
    return token, claims


def told_of(receipt: Receipt) -> dict:
    """Who had to be told of the erasure and how each was, now: the recipients of the
    categories the signed receipt lists with records (it stands even where a restored backup
    lost the request's rows)."""
    erased = {
        c["category"]: c["records"] for c in signing.claims_of(receipt.jws).get("categories", [])
    }
    return told.for_categories(receipt.request_id, told.erased_categories(erased))


def key_unrecoverable(receipt: Receipt) -> dict:
    """``unrecoverable_after`` as the receipt promised it, and ``unrecoverable`` — whether
    every shred epoch alive when the key was deleted has had its key destroyed since (with
    when). Nothing is claimed for a key made before epochs (the receipt says so by a null)."""
    promised = signing.claims_of(receipt.jws).get("unrecoverable_after")
    since = None
    if promised:
        run = db.session.get(ErasureRun, receipt.request_id)
        deleted_by = run.finished_at if run is not None and run.finished_at else utcnow()
        since = epochs.unreadable_since(deleted_by)
    return {
        "unrecoverable_after": promised,
        "unrecoverable": since is not None,
        "unrecoverable_since": since.isoformat() if since else None,
    }


def for_record_key(record_key: str) -> tuple[str, dict] | None:
    """The signed statement a record key opens, or None — the same for unknown and
    malformed keys."""
    receipt = erasure.receipt_by_record_key(record_key)
    if receipt is None:
        return None
    return issue(receipt)


def receipt_file(receipt: Receipt, record_key: str) -> dict:
    """What a former member downloads and keeps: the receipt, the key, how to use both."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return {
        "format": "lethe-deletion-receipt/1",
        "receipt": receipt.jws,
        "record_key": erasure.format_record_key(record_key),
        "statement": f'POST {base}/api/v1/statements with {{"record_key": ...}}, or the '
        f"form at {base}/records",
        "verify": f"The receipt is a JWS (EdDSA, Ed25519). Verify it against "
        f"{base}/.well-known/jwks.json with any JOSE library, or: flask receipts verify FILE",
    }
