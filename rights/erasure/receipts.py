"""Deletion receipts and record keys: what an erasure gives the person it erased.

The receipt is signed when the rows are gone and before the subject's key is destroyed; the
record key (Crockford's Base32 with a check symbol, :mod:`rights.erasure.record_keys`) is the
former member's only credential afterwards. Lethe keeps its hash, and a sealed copy only
until the key has been shown once. A copy of each receipt is kept in the key store, so that a
main database restored from an older backup still answers a record key. The erasure run
(:mod:`rights.erasure.erasure`) issues them as one of its steps.

A receipt is written in English, whatever the language of the request or the page (its words
are shown translated where the person reads it: :mod:`rights.erasure.statements`).
"""

import base64
import json
import secrets
import uuid

from flask import current_app
from sqlalchemy import select

from retention_policies import policies
from rights.erasure import record_keys
from rights.ledger import audit, signing, transparency
from rights.lifecycle import notices
from rights.recipients import told, webhooks
from storage import epochs, vault, wording
from storage.clock import utcnow
from storage.datamap import CATEGORIES, Category
from storage.db import db
from storage.models import ErasureRun, Receipt, ReceiptRecord, RightsRequest, Subject
from storage.steps import Steps


def retain_until(cat: Category, erased_at):
    """Until when erasure keeps a 'retain' category's rows (its policy's period after)."""
    return policies()[cat.retention_policy].retain_after_erasure.after(erased_at)


def new_record_key() -> str:
    """A fresh record key: Crockford's Base32 with a check symbol, in groups of four
    (:mod:`rights.erasure.record_keys`)."""
    return record_keys.new()


def normalise_record_key(text: str) -> str | None:
    """The key as Lethe spells it, or None for a typo and for text that is no key."""
    return record_keys.normalise(text)


def format_record_key(text: str) -> str | None:
    """The key as Lethe prints it (ABCD-EFGH-…), however it was typed."""
    return record_keys.format_key(text)


def record_key_hash(record_key: str) -> str | None:
    """What is stored of a key; an old key's is the one stored when it was issued."""
    return record_keys.fingerprint(record_key)


def receipt_claims(request: RightsRequest, erasure: ErasureRun, receipt_id: str) -> dict:
    subject = db.session.get(Subject, request.subject_id)
    key_epoch = epochs.current()
    legacy = epochs.ever_under_kek(subject.id)
    categories = []
    for cat in CATEGORIES:
        entry = {"category": cat.key, "title": cat.title, "records": erasure.counts.get(cat.key, 0)}
        if cat.erasure.action == "retain":
            entry.update(
                action="retained",
                exception=cat.erasure.exception,
                retain_until=retain_until(cat, erasure.erased_at).isoformat(),
            )
        else:
            entry["action"] = "erased" if cat.erasure.action == "delete" else "anonymised"
        categories.append(entry)
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return {
        "iss": base,
        "sub": subject.ref,
        "jti": receipt_id,
        "iat": int(utcnow().timestamp()),
        "receipt_id": receipt_id,
        "request_id": request.id,
        "request_reference": request.reference,
        "erased_at": erasure.erased_at.isoformat(),
        "subject_key_destroyed": True,
        # Deleting the key's row leaves copies (old row versions, the write-ahead log, backups)
        # wrapped under the current shred epoch's key; that key is destroyed when the epoch
        # ends, and from then on no copy anywhere can be read.
        # A key made before epochs existed was wrapped under the key-encryption key, which no
        # shred destroys: backups from then stay readable with it, so nothing is promised.
        "key_epoch": None if legacy else key_epoch.id,
        "unrecoverable_after": None if legacy else key_epoch.ends_at.isoformat(),
        "categories": categories,
        # Who received the data and is told (Art. 19), as things stood when this was signed;
        # holdings statements show each one's state now. "recipients": each webhook delivery;
        # "told": each recipient the data map names for the categories above (those with
        # records), and how it is told — by webhook, or by our privacy team.
        "recipients": webhooks.recipients_of(request.id),
        "told": told.for_categories(request.id, told.erased_categories(erasure.counts)),
        "statement_url": f"{base}/records",
        "jwks_url": f"{base}/.well-known/jwks.json",
    }


def issue_receipt(request: RightsRequest, erasure: ErasureRun) -> None:
    """Sign the receipt, make the record key and queue the last notice, which carries both
    (flushes; once per request: a rerun finds the receipt and does nothing)."""
    if receipt_for(request) is not None:
        return
    receipt_id = str(uuid.uuid4())
    with wording.in_language("en"):  # signed words are English; pages translate them
        claims = receipt_claims(request, erasure, receipt_id)
    token = signing.sign(claims, signing.RECEIPT_TYP)
    kid = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    record_key = new_record_key()
    subject = db.session.get(Subject, request.subject_id)
    db.session.add(
        Receipt(
            id=receipt_id,
            request_id=request.id,
            subject_ref=subject.ref,
            kid=kid,
            jws=token,
            record_key_hash=record_key_hash(record_key),
            record_key_sealed=vault.seal(f"record-key:{receipt_id}", record_key.encode()),
        )
    )
    # The last message to this person: sealed with the service key, since theirs goes next.
    notices.erased(request, record_key, token)
    audit.record(
        "lethe",
        "erasure.receipt_issued",
        subject_ref=subject.ref,
        target=f"receipt:{receipt_id}",
        details={"kid": kid},
    )
    db.session.flush()


def ensure_receipt_copy(request_id: str) -> Steps[None]:
    """Keep the receipt's copy in the key store (idempotent; repairs a half-landed commit).
    Steps: the copy is committed on its own when it had to be made."""
    receipt = db.session.execute(
        select(Receipt).where(Receipt.request_id == request_id)
    ).scalar_one()
    if db.session.get(ReceiptRecord, receipt.id) is None:
        db.session.add(
            ReceiptRecord(
                id=receipt.id,
                request_id=request_id,
                subject_ref=receipt.subject_ref,
                jws=receipt.jws,
                record_key_hash=receipt.record_key_hash,
                issued_at=receipt.issued_at,
            )
        )
        # Into the public log with the key store's copy, in the key store's own commit:
        # only once the receipt is committed (a receipt whose commit failed is signed again
        # and would leave a leaf nobody holds), and only once.
        transparency.queue_once(receipt.jws, "receipt")
        yield


def receipt_for(request: RightsRequest) -> Receipt | None:
    return db.session.execute(
        select(Receipt).where(Receipt.request_id == request.id)
    ).scalar_one_or_none()


def reveal_record_key(receipt: Receipt) -> str | None:
    """The record key, the first time only (flushes): the sealed copy is wiped as it is shown."""
    if receipt.record_key_sealed is None:
        return None
    key = vault.unseal(f"record-key:{receipt.id}", receipt.record_key_sealed).decode()
    receipt.record_key_sealed = None
    receipt.record_key_shown_at = utcnow()
    audit.record(
        "subject",
        "erasure.record_key_shown",
        subject_ref=receipt.subject_ref,
        target=f"receipt:{receipt.id}",
    )
    db.session.flush()
    return key


def receipt_by_record_key(record_key: str) -> Receipt | ReceiptRecord | None:
    """The receipt a record key opens, or None (unknown and malformed alike; a key with a
    typo in it is never looked up). Falls back to the key store's copy when the main database
    was restored from an older backup."""
    digest = record_key_hash(record_key)
    if digest is None:
        return None
    receipt = (
        db.session.execute(
            select(Receipt).where(Receipt.record_key_hash == digest)
        ).scalar_one_or_none()
        or db.session.execute(
            select(ReceiptRecord).where(ReceiptRecord.record_key_hash == digest)
        ).scalar_one_or_none()
    )
    if receipt is None or not secrets.compare_digest(receipt.record_key_hash, digest):
        return None
    return receipt


def log_placement(receipt: Receipt) -> transparency.Placement | None:
    """Where the public log has ``receipt``: as :func:`transparency.placement`, and "being
    added" (no index) in the moment between the receipt's commit and its copy's, when the
    key store's step that queues it has not run yet."""
    placement = transparency.placement(receipt.jws)
    if placement is None and db.session.get(ReceiptRecord, receipt.id) is None:
        head = transparency.latest()
        return transparency.Placement(index=None, size=head.size if head else 0, checked=False)
    return placement
