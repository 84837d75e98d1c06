"""``flask worker``: the background worker, for all roles or some (``--role``).

It runs rounds (:func:`rights.jobs.run_due`) back to back while they find work, and between
idle rounds waits on :class:`storage.wakeup.Waiter` — woken by PostgreSQL's NOTIFY when work
is queued, or by an adaptive poll on SQLite. SIGTERM or SIGINT lets the item in hand finish
and commit, starts nothing more, and exits 0 (a second SIGINT stops at once).

Each message it handles writes one JSON line on ``lethe.jobs`` (stderr), carrying the id of the
HTTP request that queued it (``request_id``; :mod:`storage.trace`).
"""

import logging
import signal
from collections.abc import Iterable

import click
from flask import current_app
from flask.cli import with_appcontext

from rights import jobs
from storage import trace, wakeup
from storage.db import db

log = logging.getLogger("lethe.worker")


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    help="Longest wait between idle rounds, in seconds (work queued wakes the worker sooner).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="ROLE",
    help=f"Only this work: {', '.join(jobs.ROLES)} (repeat or separate with commas; default all).",
)
@with_appcontext
def worker(once: bool, interval: float, roles: tuple[str, ...]) -> None:
    """Deliver the outbox: emails, jobs (erasures), webhooks and scheduled sweeps. Run as many
    as you like, for all roles or some; on PostgreSQL they claim work with SKIP LOCKED, and
    one sweep at a time runs across all of them."""
    try:
        chosen = jobs.parse_roles(roles)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--role") from None
    # One JSON object a line on lethe.jobs, one per message handled (storage/trace.py), set up
    # before the worker's own lines take the root logger.
    trace.json_lines_somewhere(trace.jobs_log)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = current_app._get_current_object()
    if once:
        counts = _round(app, chosen, None, once=True)
        click.echo(
            f"sent {counts.get('sent', 0)}, retry {counts.get('retry', 0)}, "
            f"dead {counts.get('dead', 0)}; "
            f"webhooks delivered {counts.get('webhooks_delivered', 0)}, "
            f"retry {counts.get('webhooks_retry', 0)}, dead {counts.get('webhooks_dead', 0)}"
        )
        return
    serve(app, chosen, interval)


def serve(app, roles: Iterable[str] | None = None, interval: float = 2.0) -> None:
    """Run the worker loop for ``roles`` (all when None) until SIGTERM or SIGINT: what
    ``flask worker`` runs, and the job workers gunicorn forks (gunicorn.conf.py,
    LETHE_JOB_WORKERS) — there the lines go wherever gunicorn's process sends its logging."""
    chosen = jobs.parse_roles(roles or ())
    with app.app_context():
        waiter = wakeup.Waiter(db.engine, chosen, interval)
    stopping = StopRequest(waiter)
    signal.signal(signal.SIGTERM, stopping.handle)
    signal.signal(signal.SIGINT, stopping.handle)
    log.info("worker started: roles %s, woken by %s", ",".join(chosen), _how(waiter))
    try:
        while not stopping.is_set():
            counts = _round(app, chosen, stopping.is_set)
            if not stopping.is_set():
                # At once after a round that found work: a backlog is worked through.
                waiter.wait(worked=any(counts.values()))
    finally:
        # Stopped (or failing): more SIGTERMs while the process exits change nothing. Blocked,
        # not ignored: the interpreter resets its handlers to the default as it exits (one
        # arriving then would end it with -SIGTERM), and swapping the handler for SIG_IGN
        # races a signal already caught ("Signal 15 ignored due to race condition" on
        # stderr). Before the waiter's pipe closes: a handler run between its two ends'
        # closing wrote into a pipe with no reader (BrokenPipeError, exit 1).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        waiter.close()
    log.info("worker stopped")


class StopRequest:
    """SIGTERM or SIGINT asks the worker to stop. The handler takes no lock: Python runs it
    between two bytecodes of the main thread, which may be inside a lock's critical section
    (a ``threading.Event.set`` of an earlier signal) — a handler that set an Event again
    waited forever on its own lock. It sets a flag and writes to the waiter's pipe."""

    def __init__(self, waiter: wakeup.Waiter):
        self.waiter = waiter
        self.requested = False

    def handle(self, signum, frame) -> None:
        self.requested = True
        self.waiter.interrupt()
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C stops at once

    def is_set(self) -> bool:
        return self.requested


def _round(app, roles, stop, *, once: bool = False) -> dict:
    # A fresh app context per round: no session state or cached subject key outlives it.
    try:
        with app.app_context():
            return jobs.run_due(roles=roles, stop=stop)
    except Exception:  # a bad round is logged; the worker goes on (work is retried)
        if once:
            raise
        log.exception("worker round failed")
        return {}


def _how(waiter: wakeup.Waiter) -> str:
    return "notifications" if waiter.listening else "an adaptive poll"
