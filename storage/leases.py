"""Work that one worker at a time may do across all workers — a scheduled sweep — guarded by a
lease: a row of ``worker_leases`` naming its holder, with an expiry.

Why a lease row rather than PostgreSQL's advisory lock: a sweep is many committed steps
(:mod:`storage.steps`), so a transaction-scoped advisory lock would end at its first commit,
and a session-scoped one (``pg_try_advisory_lock``) would need a connection kept out of the
pool for the whole sweep, dying with it only if the process dies; SQLite has neither. A lease
works the same on both databases (and is tested on both), holds no database lock and no
connection while the work runs, and shows in the database who sweeps and until when. What it
costs: one write when the work is due — callers check that first, with a read, so an idle
round writes nothing — and, after a worker is killed holding it, the work waits until the
lease lapses (``TTL``; the holder renews it as its steps go by)."""

import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import insert, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.clock import utcnow
from storage.db import db
from storage.models import WorkerLease
from storage.steps import Steps, advance

T = TypeVar("T")
TTL = timedelta(minutes=2)
RENEW_AFTER_SECONDS = TTL.total_seconds() / 4

_holder: tuple[int, str] | None = None
# INSERT ... ON CONFLICT DO NOTHING, where the database has it.
_INSERT_IF_MISSING = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class LeaseLost(Exception):
    """The lease lapsed while its work ran (a step longer than ``TTL``) and another worker
    took it: the work stops; its committed steps stand."""


def holder() -> str:
    """This process, as a lease holder: host, process id and a random tag (new in a fork)."""
    global _holder
    if _holder is None or _holder[0] != os.getpid():
        tag = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"
        _holder = (os.getpid(), tag)
    return _holder[1]


def take(name: str) -> bool:
    """Take lease ``name`` if it is free or lapsed (flushes; commit before the work starts).
    Of two workers at once, one wins: the conditional UPDATE waits for the other's (row lock
    on PostgreSQL, the write lock on SQLite) and then finds the lease held."""
    now = utcnow()
    session = db.session
    insert_if_missing = _INSERT_IF_MISSING.get(session.get_bind().dialect.name)
    if insert_if_missing is not None:
        session.execute(
            insert_if_missing(WorkerLease)
            .values(name=name, holder="", expires_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
    elif session.get(WorkerLease, name) is None:
        session.execute(insert(WorkerLease).values(name=name, holder="", expires_at=now))
    won = session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name, WorkerLease.expires_at <= now)
        .values(holder=holder(), expires_at=now + TTL)
    ).rowcount
    return won == 1


def renew(name: str) -> None:
    """Push the lease's expiry ahead (flushes with the work's step); :class:`LeaseLost` when it
    is not ours any more."""
    kept = db.session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name, WorkerLease.holder == holder())
        .values(expires_at=utcnow() + TTL)
    ).rowcount
    if kept != 1:
        raise LeaseLost(name)


def release(name: str) -> None:
    """Let the lease go now (flushes), if it is still ours."""
    db.session.execute(
        update(WorkerLease)
        .where(WorkerLease.name == name, WorkerLease.holder == holder())
        .values(expires_at=utcnow())
    )


def exclusive(name: str, work: Callable[[], Steps[T]], *, busy: T) -> Steps[T]:
    """Run ``work()``'s steps holding lease ``name``, or return ``busy`` at once when another
    worker holds it. The lease is committed before the work's first step and let go in a step
    after its last; a failing step leaves it to lapse."""
    if not take(name):
        return busy
    yield  # the lease is ours, for every other worker to see, before any work
    result = yield from _renewing(name, work())
    release(name)
    yield
    return result


def _renewing(name: str, steps: Steps[T]) -> Steps[T]:
    """``steps`` as they are, the lease renewed in the step after any commit that comes
    ``RENEW_AFTER_SECONDS`` after the last renewal. A failed commit is thrown into the work
    at its yield, as :func:`storage.steps.run_steps` does."""
    renewed = time.monotonic()
    failure: Exception | None = None
    while True:
        finished, result = advance(steps, failure)
        if finished:
            return result
        failure = None
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - handed to the work, where it would have been
            failure = exc
            continue
        if time.monotonic() - renewed > RENEW_AFTER_SECONDS:
            renew(name)
            renewed = time.monotonic()
