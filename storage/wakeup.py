"""Waking the worker when there is work for it, instead of letting the work wait for a poll.

The writer's side is :func:`notify`: whatever queues work for a worker role (an email for
``mail``, a job for ``jobs``, a webhook delivery for ``webhooks``) calls it in the transaction
that writes the row. On PostgreSQL that becomes ``NOTIFY lethe_work, '<role>'``, issued just
before the transaction commits (one per role, however many rows it queued); PostgreSQL delivers
a notification at commit, so a worker is never woken for a row it cannot see yet, nor for one
rolled back. Elsewhere it does nothing.

The worker's side is :class:`Waiter`, which the worker asks to wait between rounds that found
nothing to do:

- on PostgreSQL it waits on a ``LISTEN lethe_work`` connection of its own (psycopg, autocommit,
  from the engine's URL), with the poll interval as the timeout: a notification for one of the
  worker's roles wakes it at once; the timeout still brings the rounds that time makes due (a
  retry's backoff, a sweep's schedule);
- on SQLite, which has no notifications, it polls adaptively: 50 ms after a round that found
  work, doubling with each idle round up to the interval. Meanwhile it looks every 10 ms at
  ``PRAGMA data_version`` on a connection of its own — a counter in the database's shared
  memory that changes when another connection commits — and wakes when it has changed, so
  that a request verified after a long idle spell does not wait out the interval either. The
  look takes no lock and reads no page; a commit unrelated to the worker costs one idle round.
  Looking every 10 ms costs an idle worker about 1 % of a core (11 ms of CPU a second,
  measured) and halves a receipt's wait against 50 ms (scripts/bench_wakeup.py: verified →
  receipt 125 → 43 ms).

A signal handler calls :meth:`Waiter.interrupt` to end a wait at once (the worker then stops:
SIGTERM).
"""

import logging
import os
import select
import sqlite3
import time

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from storage.db import db

CHANNEL = "lethe_work"
FIRST_POLL = 0.05  # seconds: the first idle wait after a round that found work
TICK = 0.01  # seconds between two looks at SQLite's data_version
_PENDING = "lethe_wakeup_roles"

log = logging.getLogger("lethe.wakeup")


# --- the writer's side --------------------------------------------------------------------


def notify(role: str, session=None) -> None:
    """Wake the workers of ``role`` when the current transaction commits (PostgreSQL; nothing
    elsewhere). Call it where the row that is their work is written."""
    session = session if session is not None else db.session
    if session.get_bind().dialect.name == "postgresql":
        session.info.setdefault(_PENDING, set()).add(role)


@event.listens_for(Session, "before_commit")
def _send_notifications(session) -> None:
    roles = session.info.pop(_PENDING, None)
    for role in sorted(roles or ()):
        # Queued with the transaction: delivered by PostgreSQL when it commits.
        session.execute(
            text("SELECT pg_notify(:channel, :role)"), {"channel": CHANNEL, "role": role}
        )


@event.listens_for(Session, "after_transaction_end")
def _forget_notifications(session, transaction) -> None:
    if transaction.parent is None:  # the whole transaction ended (a rollback): nothing to say
        session.info.pop(_PENDING, None)


# --- the worker's side --------------------------------------------------------------------


class Waiter:
    """Waits between a worker's rounds until there may be work for ``roles``, the wait is up,
    or :meth:`interrupt` is called (from a signal handler). Make it before the first round, so
    that nothing queued during that round goes unheard."""

    def __init__(self, engine: Engine, roles, interval: float):
        self.roles = frozenset(roles)
        self.interval = interval
        self.delay = FIRST_POLL
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._listener = _Listener(engine) if engine.dialect.name == "postgresql" else None
        self._version = _DataVersion.of(engine)

    @property
    def listening(self) -> bool:
        """Whether a notification can wake this waiter (PostgreSQL's LISTEN)."""
        return self._listener is not None

    def wait(self, worked: bool) -> None:
        """Return when the next round should run: at once after a round that ``worked``."""
        if worked:
            self.delay = FIRST_POLL
            return
        if self._listener is not None:
            self._listener.wait(self.interval, self.roles, self._wake_r)
            return
        self._poll(self.delay)
        self.delay = min(self.delay * 2, self.interval)

    def interrupt(self) -> None:
        """End the current (or the next) wait at once. Safe in a signal handler."""
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # the pipe is full: a wake-up is already pending
        except OSError:
            pass  # closed (the worker is stopping: a Ctrl-C then): nothing left to wake

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._version is not None:
            self._version.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            step = remaining if self._version is None else min(TICK, remaining)
            if _readable(self._wake_r, step):
                return _drain(self._wake_r)
            if self._version is not None and self._version.changed():
                return


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass


class _Listener:
    """A ``LISTEN lethe_work`` connection of the worker's own, outside the engine's pool."""

    def __init__(self, engine: Engine):
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn = None
        try:
            self._connect()  # before the first round: nothing queued meanwhile goes unheard
        except Exception as exc:  # noqa: BLE001 - the database is not up yet: retried on waits
            log.warning("worker wake-up connection failed (%s); polling", type(exc).__name__)

    def _connect(self):
        import psycopg  # only where PostgreSQL is used

        if self._conn is None:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def wait(self, timeout: float, roles: frozenset, wake_fd: int) -> None:
        """Until a notification for one of ``roles``, ``timeout`` seconds or ``wake_fd``."""
        import psycopg

        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                conn = self._connect()
                ready = select.select([conn.fileno(), wake_fd], [], [], remaining)[0]
                if wake_fd in ready:
                    return _drain(wake_fd)
                if ready and {n.payload for n in conn.notifies(timeout=0)} & roles:
                    return
            except psycopg.Error as exc:
                # The database went away: poll on the interval until it is back.
                log.warning("worker wake-up connection lost (%s); polling", type(exc).__name__)
                self.close()
                if _readable(wake_fd, remaining):
                    _drain(wake_fd)
                return

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class _DataVersion:
    """SQLite's ``PRAGMA data_version`` on a connection of the waiter's own: it changes when
    another connection (another process, or the worker's own pool) commits to the file."""

    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._last = self._read()

    @classmethod
    def of(cls, engine: Engine) -> "_DataVersion | None":
        path = engine.url.database
        if engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return None
        return cls(path)

    def _read(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def changed(self) -> bool:
        try:
            now = self._read()
        except sqlite3.Error:
            return False  # busy or gone for a moment: the adaptive poll goes on
        changed, self._last = now != self._last, now
        return changed

    def close(self) -> None:
        self._conn.close()
