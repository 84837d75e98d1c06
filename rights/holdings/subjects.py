"""Finding and creating data subjects by email (through the blind index) or member id."""

import secrets
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage import vault
from storage.db import db
from storage.models import Member, Subject


def new_ref() -> str:
    return "sub_" + secrets.token_hex(10)


def by_email(email: str) -> Subject | None:
    return db.session.execute(
        select(Subject).where(Subject.email_index == vault.blind_index(email))
    ).scalar_one_or_none()


def get_or_create(email: str) -> Subject:
    """The subject for this address, created (with its own key) if Lethe has never seen it."""
    subject = by_email(email)
    if subject is not None:
        return subject
    try:
        # A savepoint: a concurrent request (a double-click) may create the same subject;
        # then its row is used and this transaction carries on.
        with db.session.begin_nested():
            subject = Subject(ref=new_ref(), email_index=vault.blind_index(email))
            db.session.add(subject)
            db.session.flush()
            vault.create_subject_key(subject.id)
    except IntegrityError:
        vault.forget_cached_key(subject.id)
        subject = by_email(email)
        if subject is None:
            raise
        _await_key(subject.id)
    return subject


KEY_WAIT_SECONDS = 5.0


def _await_key(subject_id: str) -> None:
    """The subject another request just created is visible; its key may not be yet. The two
    live in two databases, committed one after the other: between the two commits the subject
    row is there and its key is not. Wait (briefly: the commits are back to back) until it is,
    rather than fail the request with a missing key."""
    deadline = time.monotonic() + KEY_WAIT_SECONDS
    delay = 0.005
    while True:
        try:
            vault.subject_key(subject_id)
            return
        except vault.KeyMissing:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def member_of(subject_id: str) -> Member | None:
    return db.session.execute(
        select(Member).where(Member.subject_id == subject_id)
    ).scalar_one_or_none()


def member_by_external_id(external_id: str) -> Member | None:
    return db.session.execute(
        select(Member).where(Member.external_id == external_id)
    ).scalar_one_or_none()
