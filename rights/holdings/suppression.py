"""Suppression after erasure: keyed fingerprints of an erased person's identifiers.

Only HMACs remain (no address, no member id), in the key store. Ingestion checks them so the
platform cannot silently re-create what was erased; a new sign-up lifts them.
"""

from sqlalchemy import select

from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import SuppressionTombstone


def fingerprint(kind: str, value: str) -> str:
    value = vault.normalise_email(value) if kind == "email" else value.strip()
    return vault.keyed_fingerprint(f"suppress:{kind}", value)


def add_fingerprint(
    kind: str, fp: str, *, subject_id: str, subject_ref: str, request_id: str | None, erased_at
) -> None:
    """Record a tombstone (a fingerprint from :func:`fingerprint`) once per subject
    (flushes)."""
    exists = db.session.execute(
        select(SuppressionTombstone.id).where(
            SuppressionTombstone.fingerprint == fp, SuppressionTombstone.subject_id == subject_id
        )
    ).first()
    if not exists:
        db.session.add(
            SuppressionTombstone(
                kind=kind,
                fingerprint=fp,
                subject_id=subject_id,
                subject_ref=subject_ref,
                request_id=request_id,
                erased_at=erased_at,
            )
        )
        db.session.flush()


def is_suppressed(kind: str, value: str) -> bool:
    fp = fingerprint(kind, value)
    return (
        db.session.execute(
            select(SuppressionTombstone.id).where(
                SuppressionTombstone.fingerprint == fp, SuppressionTombstone.lifted_at.is_(None)
            )
        ).first()
        is not None
    )


def lift(kind: str, value: str, *, actor: str) -> int:
    """The person signed up again: their identifier may be used anew. Returns rows lifted."""
    fp = fingerprint(kind, value)
    rows = (
        db.session.execute(
            select(SuppressionTombstone).where(
                SuppressionTombstone.fingerprint == fp, SuppressionTombstone.lifted_at.is_(None)
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        row.lifted_at = utcnow()
        audit.record(
            actor, "suppression.lifted", subject_ref=row.subject_ref, details={"kind": kind}
        )
    return len(rows)


def tombstones():
    """Every tombstone, oldest first (for replay after a restore)."""
    return db.session.execute(
        select(SuppressionTombstone).order_by(
            SuppressionTombstone.erased_at, SuppressionTombstone.id
        )
    ).scalars()
