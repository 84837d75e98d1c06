"""Erasure (Art. 17) and account deletion, driven by the data map.

A resumable, idempotent sequence of committed steps, recorded in :class:`ErasureRun`:

1. ``planned``      the run exists, the erasure time is fixed, suppression tombstones (keyed
                    fingerprints only, in the key store) are written;
2. ``rows_removed`` every "delete" category's rows (and their history) are deleted in batches,
                    "anonymise" categories have their personal columns cleared;
3. ``retained``     every "retain" category's rows are restricted: kept under their named
                    Art. 17(3) exception until ``retain_until``, not used;
4. ``receipt``      the signed deletion receipt and the record key (hash only, plus a sealed
                    copy until it is shown once) are stored with the last notice, in one
                    transaction;
5. ``key_destroyed`` the subject's key is deleted from the key store (crypto-shredding):
                    whatever could not be reached — backups, replicas, old pages — is
                    unreadable now;
6. ``completed``    the request is completed.

Killing the process anywhere and running again finishes the job once: each step checks what
is done, and the receipt is unique per request.
"""

import base64
import hashlib
import json
import logging
import secrets
import uuid

from flask import current_app
from sqlalchemy import delete, func, select, update

from retention_policies import policies
from rights.delivery import mail
from rights.holdings import subjects, suppression
from rights.ledger import audit, signing
from rights.lifecycle import notices, requests
from rights.recipients import downstream, webhooks
from storage import epochs, vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES, Category
from storage.db import db
from storage.models import (
    DeliveryAttempt,
    ErasureRun,
    OutboxMessage,
    Receipt,
    ReceiptRecord,
    RecordHistory,
    RequestStatus,
    RightsRequest,
    Subject,
    SubjectKey,
)

log = logging.getLogger(__name__)
STEPS = ("planned", "rows_removed", "retained", "receipt", "key_destroyed", "completed")
BATCH = 1000


def _at_least(run: ErasureRun, step: str) -> bool:
    return STEPS.index(run.step) >= STEPS.index(step)


def _deletion_order() -> list[Category]:
    """'delete' categories, children before parents (by foreign keys)."""
    order = {t.name: i for i, t in enumerate(db.metadatas[None].sorted_tables)}
    cats = [c for c in CATEGORIES if c.erasure.action == "delete"]
    return sorted(cats, key=lambda c: -order[c.table])


def run(request_id: str, *, actor: str = "lethe", batch: int = BATCH) -> Receipt | None:
    """Erase the request's subject, resuming wherever a previous run stopped. Commits.

    Key-store effects (tombstones, the key's destruction) are committed on their own and
    re-applied on every run, so a commit that reached one database and not the other is
    repaired by the next run; a step is only recorded after its key-store effect is checked.
    Returns the receipt, or None when there was nothing to do (the request was withdrawn
    before it started, or the subject had already been erased by another request).
    """
    request = requests.get(request_id)
    erasure = db.session.get(ErasureRun, request_id)
    if erasure is None:
        if request.status != RequestStatus.IN_PROGRESS:
            return None  # withdrawn or refused before it started: nothing to resume
        subject = db.session.get(Subject, request.subject_id)
        if subject.erased_at is not None:
            requests.complete(request, actor=actor, note="already erased", notify=False)
            db.session.commit()
            return None
        erasure = _plan(request)
    _ensure_tombstones(erasure)
    if not _at_least(erasure, "rows_removed"):
        erase_rows(erasure.subject_id, batch=batch, run=erasure)
        _step(erasure, "rows_removed")
    if not _at_least(erasure, "retained"):
        erasure.counts = {
            **erasure.counts,
            **restrict_retained(erasure.subject_id, erasure.erased_at),
        }
        _step(erasure, "retained")
    if not _at_least(erasure, "receipt"):
        _issue_receipt(request, erasure)
        _step(erasure, "receipt")
    _ensure_receipt_copy(request_id)
    # Always (idempotent): destroy the key, commit, and check it is gone before going on.
    destroy_identity(erasure.subject_id, erasure.erased_at)
    db.session.commit()
    vault.scrub_destroyed_keys()
    mail.forget_subject(erasure.subject_id)
    if db.session.get(SubjectKey, erasure.subject_id) is not None:
        raise RuntimeError("subject key still present after destruction")
    if not _at_least(erasure, "key_destroyed"):
        _step(erasure, "key_destroyed")
    if not _at_least(erasure, "completed"):
        request = requests.get(request_id)
        requests.complete(request, actor=actor, note="erased from the data map", notify=False)
        erasure.finished_at = utcnow()
        _step(erasure, "completed")
        log.info("erasure %s completed: %s", request_id, erasure.counts)
    return db.session.execute(select(Receipt).where(Receipt.request_id == request_id)).scalar_one()


def _step(erasure: ErasureRun, step: str) -> None:
    erasure.step = step
    db.session.commit()


def _plan(request: RightsRequest) -> ErasureRun:
    """Fix the erasure time, fingerprint the identifiers (while they can still be read),
    close the subject's other open requests, and stop new records for the subject at once."""
    subject = db.session.get(Subject, request.subject_id)
    now = utcnow()
    member = subjects.member_of(subject.id)
    identifiers = []
    contact = vault.decrypt(subject.id, "rights_requests.contact_enc", request.contact_enc)
    if contact:
        identifiers.append(("email", contact))
    if member is not None:
        identifiers.append(
            ("email", vault.decrypt(subject.id, "members.email_enc", member.email_enc))
        )
        identifiers.append(("member_id", member.external_id))
    fingerprints = sorted({(kind, suppression.fingerprint(kind, v)) for kind, v in identifiers})
    erasure = ErasureRun(
        request_id=request.id,
        subject_id=subject.id,
        step="planned",
        erased_at=now,
        counts={},
        fingerprints=[list(f) for f in fingerprints],
    )
    db.session.add(erasure)
    # From now on ingestion refuses this subject (records.py checks erased_at).
    subject.erased_at = now
    requests.close_superseded(subject.id, request.id, actor="lethe")
    # Recipients are told with the plan, while the records they hold can still be named; other
    # deliveries not yet sent let go of the identifiers recipients use for the person.
    downstream.erased(request)
    webhooks.forget_identifiers(subject.id, keep=request.id)
    audit.record(
        "lethe", "erasure.planned", subject_ref=subject.ref, target=f"request:{request.id}"
    )
    db.session.commit()
    # Make sure a signing key exists, committed (and so published) before a receipt names it.
    signing.current_key()
    db.session.commit()
    return erasure


def _ensure_tombstones(erasure: ErasureRun) -> None:
    subject = db.session.get(Subject, erasure.subject_id)
    for kind, fp in erasure.fingerprints or []:
        suppression.add_fingerprint(
            kind,
            fp,
            subject_id=subject.id,
            subject_ref=subject.ref,
            request_id=erasure.request_id,
            erased_at=erasure.erased_at,
        )
    db.session.commit()


def erase_rows(
    subject_id: str, *, batch: int = BATCH, run: ErasureRun | None = None
) -> dict[str, int]:
    """Delete every 'delete' category's rows of a subject, with their history, in batches of
    ``batch`` (each committed, with ``run``'s counts in the same transaction, so a resumed
    run still counts what the killed one did); clear 'anonymise' categories' columns.
    Idempotent."""
    counts = {}
    for cat in _deletion_order():
        table = cat.model.__table__
        pk = list(table.primary_key.columns)[0]
        total = 0
        while True:
            ids = [
                r[0]
                for r in db.session.execute(
                    select(pk).where(table.c[cat.subject_column] == subject_id).limit(batch)
                )
            ]
            if not ids:
                break
            if cat.has_provenance:
                db.session.execute(
                    delete(RecordHistory).where(
                        RecordHistory.record_type == cat.table, RecordHistory.record_id.in_(ids)
                    )
                )
            if cat.model is OutboxMessage:
                db.session.execute(
                    delete(DeliveryAttempt).where(DeliveryAttempt.outbox_id.in_(ids))
                )
            db.session.execute(delete(table).where(pk.in_(ids)))
            if run is not None:
                run.counts = {**run.counts, cat.key: run.counts.get(cat.key, 0) + len(ids)}
            db.session.commit()
            total += len(ids)
        counts[cat.key] = total
    for cat in (c for c in CATEGORIES if c.erasure.action == "anonymise"):
        table = cat.model.__table__
        result = db.session.execute(
            update(table)
            .where(table.c[cat.subject_column] == subject_id)
            .values({col: None for col in cat.erasure.clears})
        )
        counts[cat.key] = result.rowcount
    db.session.commit()
    return counts


def retain_until(cat: Category, erased_at):
    return policies()[cat.retention_policy].retain_after_erasure.after(erased_at)


def restrict_retained(subject_id: str, erased_at) -> dict[str, int]:
    """Restrict every 'retain' category's rows: kept under the exception, not used."""
    counts = {}
    for cat in (c for c in CATEGORIES if c.erasure.action == "retain"):
        table = cat.model.__table__
        column = table.c[cat.subject_column]
        counts[cat.key] = db.session.execute(
            select(func.count()).select_from(table).where(column == subject_id)
        ).scalar_one()
        db.session.execute(
            update(table)
            .where(column == subject_id, table.c.restricted_at.is_(None))
            .values(
                restricted_at=erased_at,
                retained_under=cat.erasure.exception,
                retain_until=retain_until(cat, erased_at),
            )
        )
    db.session.flush()
    return counts


def destroy_identity(subject_id: str, erased_at) -> None:
    """Crypto-shred the subject's key and unlink the subject from its email (commits both
    databases; safe to repeat)."""
    # The main database first, then the key store: every transaction that writes both takes
    # their locks in that order (on SQLite each is one lock for the whole database).
    subject = db.session.get(Subject, subject_id)
    subject.email_index = None
    subject.erased_at = subject.erased_at or erased_at
    db.session.flush()
    vault.destroy_subject_key(subject_id)


# --- receipts and record keys -------------------------------------------------------------

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_record_key() -> str:
    """160 random bits, base32 in groups of four: easy to copy, type and read aloud."""
    raw = base64.b32encode(secrets.token_bytes(20)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalise_record_key(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t\r\n")
    if len(cleaned) != 32 or any(ch not in _KEY_ALPHABET for ch in cleaned):
        return None
    return cleaned


def format_record_key(text: str) -> str | None:
    """The key as Lethe prints it (ABCD-EFGH-…), however it was typed."""
    cleaned = normalise_record_key(text)
    return "-".join(cleaned[i : i + 4] for i in range(0, 32, 4)) if cleaned else None


def record_key_hash(record_key: str) -> str | None:
    cleaned = normalise_record_key(record_key)
    return hashlib.sha256(cleaned.encode()).hexdigest() if cleaned else None


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
        # holdings statements show each one's state now.
        "recipients": webhooks.recipients_of(request.id),
        "statement_url": f"{base}/records",
        "jwks_url": f"{base}/.well-known/jwks.json",
    }


def _issue_receipt(request: RightsRequest, erasure: ErasureRun) -> None:
    existing = db.session.execute(
        select(Receipt).where(Receipt.request_id == request.id)
    ).scalar_one_or_none()
    if existing is not None:
        return
    receipt_id = str(uuid.uuid4())
    token = signing.sign(receipt_claims(request, erasure, receipt_id), signing.RECEIPT_TYP)
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


def _ensure_receipt_copy(request_id: str) -> None:
    """Keep the receipt's copy in the key store (idempotent; repairs a half-landed commit)."""
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
        db.session.commit()


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
    """The receipt a record key opens, or None (unknown and malformed alike). Falls back to
    the key store's copy when the main database was restored from an older backup."""
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


# --- after a restore ------------------------------------------------------------------------


def replay(batch: int = BATCH) -> dict[str, int]:
    """After restoring a backup of the main database: erase again every subject the key
    store's tombstone log says was erased. Receipts are not re-issued (the former member
    keeps theirs; it still verifies). Idempotent. Returns counts."""
    done = set()
    counts = {"subjects": 0, "rows": 0}
    for tomb in list(suppression.tombstones()):
        if tomb.subject_id in done:
            continue
        done.add(tomb.subject_id)
        if db.session.get(Subject, tomb.subject_id) is None:
            continue
        removed = erase_rows(tomb.subject_id, batch=batch)
        restrict_retained(tomb.subject_id, tomb.erased_at)
        destroy_identity(tomb.subject_id, tomb.erased_at)
        db.session.commit()
        mail.forget_subject(tomb.subject_id)
        counts["subjects"] += 1
        counts["rows"] += sum(removed.values())
    audit.record("cli", "erasure.replayed", details=counts)
    db.session.commit()
    vault.scrub_destroyed_keys()
    return counts
