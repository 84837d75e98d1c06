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
                    transaction (:mod:`rights.erasure.receipts`);
5. ``key_destroyed`` the subject's key is deleted from the key store (crypto-shredding):
                    whatever could not be reached — backups, replicas, old pages — is
                    unreadable now;
6. ``completed``    the request is completed.

Killing the process anywhere and running again finishes the job once: each step checks what
is done, and the receipt is unique per request.

The run is written as steps (:mod:`storage.steps`): every ``yield`` below is a commit, made by
the runner — the worker's round, which runs :func:`erase_steps` as the ``erasure.run`` job, or
:func:`run` here for the command line and tests. Nothing in this module commits by itself.
"""

import logging

from sqlalchemy import delete, func, select, update

from rights.delivery import mail
from rights.erasure.receipts import (  # noqa: F401 - the receipts' names, where callers find them
    ensure_receipt_copy,
    format_record_key,
    issue_receipt,
    new_record_key,
    normalise_record_key,
    receipt_by_record_key,
    receipt_claims,
    receipt_for,
    record_key_hash,
    retain_until,
    reveal_record_key,
)
from rights.holdings import subjects, suppression
from rights.ledger import audit, signing
from rights.lifecycle import requests
from rights.recipients import downstream, webhooks
from storage import cascades, vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES, Category
from storage.db import db
from storage.models import (
    ErasureRun,
    Receipt,
    RecordHistory,
    RequestStatus,
    RightsRequest,
    Subject,
    SubjectKey,
)
from storage.steps import Steps, run_steps

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
    """Erase the request's subject now, resuming wherever a previous run stopped: the steps
    of :func:`erase_steps`, each committed. Returns the receipt, or None when there was
    nothing to do."""
    return run_steps(erase_steps(request_id, actor=actor, batch=batch))


def erase_steps(
    request_id: str, *, actor: str = "lethe", batch: int = BATCH
) -> Steps[Receipt | None]:
    """Erase the request's subject, resuming wherever a previous run stopped (steps).

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
            yield
            return None
        erasure = yield from _plan_steps(request)
    yield from _ensure_tombstones(erasure)
    if not _at_least(erasure, "rows_removed"):
        yield from erase_rows_steps(erasure.subject_id, batch=batch, run=erasure)
        yield from _step(erasure, "rows_removed")
    if not _at_least(erasure, "retained"):
        erasure.counts = {
            **erasure.counts,
            **restrict_retained(erasure.subject_id, erasure.erased_at),
        }
        yield from _step(erasure, "retained")
    if not _at_least(erasure, "receipt"):
        issue_receipt(request, erasure)
        yield from _step(erasure, "receipt")
    yield from ensure_receipt_copy(request_id)
    yield from _destroy_key(erasure)
    if not _at_least(erasure, "completed"):
        request = requests.get(request_id)
        requests.complete(request, actor=actor, note="erased from the data map", notify=False)
        erasure.finished_at = utcnow()
        yield from _step(erasure, "completed")
        log.info("erasure %s completed: %s", request_id, erasure.counts)
    return db.session.execute(select(Receipt).where(Receipt.request_id == request_id)).scalar_one()


def _step(erasure: ErasureRun, step: str) -> Steps[None]:
    """Record that ``step`` is done, committed with the work that did it."""
    erasure.step = step
    yield


def _destroy_key(erasure: ErasureRun) -> Steps[None]:
    """Always (idempotent): destroy the key, commit, and check it is gone before going on."""
    destroy_identity(erasure.subject_id, erasure.erased_at)
    yield
    vault.scrub_destroyed_keys()
    mail.forget_subject(erasure.subject_id)
    if db.session.get(SubjectKey, erasure.subject_id) is not None:
        raise RuntimeError("subject key still present after destruction")
    if not _at_least(erasure, "key_destroyed"):
        yield from _step(erasure, "key_destroyed")


def _plan(request: RightsRequest) -> ErasureRun:
    """The plan of :func:`_plan_steps` alone, committed (the erasure has begun)."""
    return run_steps(_plan_steps(request))


def _plan_steps(request: RightsRequest) -> Steps[ErasureRun]:
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
    yield
    # Make sure a signing key exists, committed (and so published) before a receipt names it.
    signing.current_key()
    yield
    return erasure


def _ensure_tombstones(erasure: ErasureRun) -> Steps[None]:
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
    yield


def erase_rows(
    subject_id: str, *, batch: int = BATCH, run: ErasureRun | None = None
) -> dict[str, int]:
    """:func:`erase_rows_steps` now, each batch committed."""
    return run_steps(erase_rows_steps(subject_id, batch=batch, run=run))


def erase_rows_steps(
    subject_id: str, *, batch: int = BATCH, run: ErasureRun | None = None
) -> Steps[dict[str, int]]:
    """Delete every 'delete' category's rows of a subject, with their history, in batches of
    ``batch`` (each a step of its own, with ``run``'s counts in the same transaction, so a
    resumed run still counts what the killed one did); clear 'anonymise' categories' columns.
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
            cascades.delete_children(cat, ids)
            db.session.execute(delete(table).where(pk.in_(ids)))
            if run is not None:
                run.counts = {**run.counts, cat.key: run.counts.get(cat.key, 0) + len(ids)}
            yield
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
    yield
    return counts


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
    """Crypto-shred the subject's key and unlink the subject from its email (flushes both
    databases, the caller commits; safe to repeat)."""
    # The main database first, then the key store: every transaction that writes both takes
    # their locks in that order (on SQLite each is one lock for the whole database).
    subject = db.session.get(Subject, subject_id)
    subject.email_index = None
    subject.erased_at = subject.erased_at or erased_at
    db.session.flush()
    vault.destroy_subject_key(subject_id)


# --- after a restore ------------------------------------------------------------------------


def replay(batch: int = BATCH) -> dict[str, int]:
    """After restoring a backup of the main database: erase again every subject the key
    store's tombstone log says was erased. Receipts are not re-issued (the former member
    keeps theirs; it still verifies). Idempotent; each subject committed on its own. Returns
    counts."""
    return run_steps(_replay_steps(batch))


def _replay_steps(batch: int) -> Steps[dict[str, int]]:
    done = set()
    counts = {"subjects": 0, "rows": 0}
    for tomb in list(suppression.tombstones()):
        if tomb.subject_id in done:
            continue
        done.add(tomb.subject_id)
        if db.session.get(Subject, tomb.subject_id) is None:
            continue
        removed = yield from erase_rows_steps(tomb.subject_id, batch=batch)
        restrict_retained(tomb.subject_id, tomb.erased_at)
        destroy_identity(tomb.subject_id, tomb.erased_at)
        yield
        mail.forget_subject(tomb.subject_id)
        counts["subjects"] += 1
        counts["rows"] += sum(removed.values())
    audit.record("cli", "erasure.replayed", details=counts)
    yield
    vault.scrub_destroyed_keys()
    return counts
