"""Workers that wake: roles split the round (a mail-only worker sends emails and leaves jobs; a
sweeps-only worker sweeps and sends nothing); one scheduled sweep at a time across all
workers (a lease; two worker processes deciding at once on PostgreSQL make one sweep); queued
work wakes an idle worker at once (PostgreSQL NOTIFY; SQLite's data_version), however long its
interval; SIGTERM mid-batch lets the message in hand finish and exits 0, losing nothing.
Workers are real ``flask worker`` processes where the behaviour is the process's own."""

import asyncio
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from freezegun import freeze_time
from sqlalchemy import func, select, text

from rights import jobs
from rights.delivery import outbox
from rights.erasure import retention
from storage import leases, wakeup
from storage.clock import utcnow
from storage.db import db
from storage.models import AuditEvent, OutboxMessage, RetentionRun, WorkerLease
from tests import factories
from tests.conftest import PG_URL, Mailbox
from tests.helpers import wait_for
from tests.test_webhook_workers import Worker


@pytest.fixture
def workers(tmp_path):
    """Start ``flask worker`` processes with ``start(app, name, *args)``; all are stopped at
    the end, whatever happened."""
    started = []

    def start(app, name, *args) -> Worker:
        started.append(Worker(app, tmp_path, name, *args))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def _queue(app, emails: int = 0, jobs_: int = 0) -> list[str]:
    """Queue emails to a member and resume-link jobs (for a reference nobody has: the job
    runs and does nothing), interleaved; committed. Returns the outbox ids in order."""
    ids = []
    with app.app_context():
        member = factories.member(1)
        for i in range(max(emails, jobs_)):
            if i < emails:
                msg = outbox.enqueue_email(
                    subject_id=member.subject_id,
                    to="person1@example.org",
                    title=f"Message {i}",
                    body="Hello.",
                    topic="test.mail",
                    request_id=None,
                )
                ids.append(msg.id)
            if i < jobs_:
                ids.append(outbox.enqueue_job("request.resume_link", argument=f"NO-SUCH-{i}").id)
        db.session.commit()
    return ids


def _outbox(app) -> dict[str, OutboxMessage]:
    with app.app_context():
        rows = db.session.execute(select(OutboxMessage)).scalars().all()
        db.session.expunge_all()
        return {m.id: m for m in rows}


def _received_ids(mailbox: Mailbox, ids) -> Counter:
    """How many times the SMTP server got each outbox message (its id is in the Message-ID)."""
    wanted = {i.replace("-", ""): i for i in ids}
    got = Counter()
    for message in list(mailbox.messages):
        for compact, outbox_id in wanted.items():
            if compact in message["Message-ID"]:
                got[outbox_id] += 1
    return got


# --- roles ------------------------------------------------------------------------------


def test_roles_are_parsed_repeated_or_comma_separated_and_default_to_all():
    assert jobs.parse_roles([]) == jobs.ROLES
    assert jobs.parse_roles(["sweeps", "mail, jobs"]) == ("mail", "jobs", "sweeps")
    with pytest.raises(ValueError, match="unknown role 'email'"):
        jobs.parse_roles(["mail,email"])


def test_the_worker_refuses_an_unknown_role(runner):
    result = runner.invoke(args=["worker", "--once", "--role", "everything"])
    assert result.exit_code == 2 and "unknown role 'everything'" in result.output


def test_a_mail_only_worker_sends_emails_and_leaves_jobs(app, mailbox):
    ids = _queue(app, emails=3, jobs_=2)
    with app.app_context():
        counts = jobs.run_due(roles=["mail"])
    rows = _outbox(app)
    assert counts == {"sent": 3, "retry": 0, "dead": 0}
    assert {(m.kind, m.status, m.attempts) for m in rows.values()} == {
        ("email", "sent", 1),
        ("job", "pending", 0),
    }
    assert sorted(_received_ids(mailbox, ids).values()) == [1, 1, 1]

    with app.app_context():
        assert jobs.run_due(roles=["jobs"])["sent"] == 2
    assert {m.status for m in _outbox(app).values()} == {"sent"}
    assert len(mailbox.messages) == 3  # the jobs worker sent no email


def test_a_jobs_only_worker_runs_jobs_and_sends_no_email(app, mailbox):
    _queue(app, emails=2, jobs_=2)
    with app.app_context():
        counts = jobs.run_due(roles=["jobs"])
    assert counts["sent"] == 2
    assert {(m.kind, m.status) for m in _outbox(app).values()} == {
        ("email", "pending"),
        ("job", "sent"),
    }
    assert mailbox.messages == []


def test_a_sweeps_only_worker_sweeps_and_sends_nothing(app_factory, mailbox):
    app = app_factory(RETENTION_SWEEP_HOURS=24)
    _queue(app, emails=2, jobs_=1)
    with app.app_context():
        counts = jobs.run_due(roles=["sweeps"])
        runs = db.session.scalar(select(func.count()).select_from(RetentionRun))
    assert counts["retention_swept"] == 1 and runs > 0
    assert not {"sent", "webhooks_delivered"} & set(counts)
    assert {m.status for m in _outbox(app).values()} == {"pending"}
    assert mailbox.messages == []


# --- one sweep at a time ------------------------------------------------------------------


def test_a_lease_is_held_by_one_worker_until_released_or_lapsed(app, monkeypatch):
    with app.app_context():
        monkeypatch.setattr(leases, "holder", lambda: "worker-a")
        assert leases.take("retention")
        db.session.commit()
        monkeypatch.setattr(leases, "holder", lambda: "worker-b")
        assert not leases.take("retention")  # held: b may not sweep
        with pytest.raises(leases.LeaseLost):
            leases.renew("retention")  # nor renew a's
        db.session.rollback()
        with freeze_time(utcnow() + leases.TTL):
            assert leases.take("retention")  # a was killed: its lease lapsed
            db.session.commit()
        monkeypatch.setattr(leases, "holder", lambda: "worker-a")
        leases.release("retention")  # not a's any more: nothing happens
        db.session.commit()
        assert db.session.get(WorkerLease, "retention").holder == "worker-b"


def test_a_sweep_due_while_another_worker_holds_the_lease_is_left_to_it(app_factory, monkeypatch):
    app = app_factory(RETENTION_SWEEP_HOURS=24)
    with app.app_context():
        monkeypatch.setattr(leases, "holder", lambda: "the-other-worker")
        assert leases.take("retention")
        db.session.commit()
        monkeypatch.setattr(leases, "holder", lambda: "this-worker")
        assert retention.run_if_due() is False
        assert db.session.scalar(select(func.count()).select_from(RetentionRun)) == 0
        # Once the other lets go (having swept, say), this one takes the lease and checks
        # again before sweeping: due here, since the other swept nothing.
        monkeypatch.setattr(leases, "holder", lambda: "the-other-worker")
        leases.release("retention")
        db.session.commit()
        monkeypatch.setattr(leases, "holder", lambda: "this-worker")
        assert retention.run_if_due() is True
        assert retention.run_if_due() is False  # swept: not due again for a day
        lease = db.session.get(WorkerLease, "retention")
        assert lease.holder == "this-worker" and lease.expires_at <= utcnow()


def test_an_idle_round_writes_no_lease(app_factory):
    app = app_factory(RETENTION_SWEEP_HOURS=24)
    with app.app_context():
        retention.run_if_due()
        db.session.commit()
        before = db.session.get(WorkerLease, "retention").expires_at
        db.session.expunge_all()
        with freeze_time(utcnow() + timedelta(minutes=5)):
            assert jobs.run_due(roles=["sweeps"])["retention_swept"] == 0
        assert db.session.get(WorkerLease, "retention").expires_at == before


@pytest.mark.skipif(not PG_URL, reason="concurrent workers need PostgreSQL (SQLite has one)")
def test_two_workers_deciding_at_once_make_one_sweep(app_factory, workers):
    app = app_factory(RETENTION_SWEEP_HOURS=24)
    names = ["lethe-sweeper-1", "lethe-sweeper-2"]
    with app.app_context():
        # Both workers' first look at the last sweep waits behind this lock, so they decide
        # at the same moment: each finds a sweep due.
        db.session.execute(text("LOCK TABLE retention_runs IN ACCESS EXCLUSIVE MODE"))
        running = [workers(app, name, "--role", "sweeps", "--interval", "0.2") for name in names]

        def both_waiting():
            for w in running:
                w.check_alive()
            waiting = db.engines[None].connect()
            try:
                rows = waiting.execute(
                    text(
                        "SELECT application_name FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalars()
                return set(names) <= set(rows)
            finally:
                waiting.close()

        wait_for(both_waiting, timeout=30, interval=0.1)
        db.session.commit()  # the lock goes: both go on at once

        def swept() -> int:
            return db.session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "retention.swept")
            )

        wait_for(lambda: [w.check_alive() for w in running] and swept(), timeout=30)
        time.sleep(1.0)  # the other worker's rounds, had it swept too, would be done by now
        for w in running:
            w.proc.send_signal(signal.SIGTERM)
            assert w.proc.wait(timeout=20) == 0, w.output()
            assert "Traceback" not in w.output(), w.output()
        db.session.expire_all()
        per_policy = dict(
            db.session.execute(
                select(RetentionRun.policy, func.count()).group_by(RetentionRun.policy)
            ).all()
        )
        sweeps_audited = swept()
    assert per_policy and set(per_policy.values()) == {1}, per_policy
    assert sweeps_audited == 1


# --- waking up ------------------------------------------------------------------------------


def test_queued_work_notifies_only_when_its_transaction_commits(app):
    if not PG_URL:
        pytest.skip("NOTIFY is PostgreSQL's")
    import psycopg

    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as listener:
            listener.execute(f"LISTEN {wakeup.CHANNEL}")
            member = factories.member(1)
            db.session.commit()
            outbox.enqueue_job("request.resume_link", argument="NO-SUCH")
            outbox.enqueue_job("request.resume_link", argument="NO-SUCH-2")
            assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
            db.session.commit()
            assert [n.payload for n in listener.notifies(timeout=2, stop_after=1)] == ["jobs"]
            assert list(listener.notifies(timeout=0.3)) == []  # one per role and transaction
            outbox.enqueue_email(
                subject_id=member.subject_id,
                to="person1@example.org",
                title="t",
                body="b",
                topic="test.mail",
                request_id=None,
            )
            db.session.rollback()
            assert list(listener.notifies(timeout=0.3)) == []  # rolled back: nothing said


def test_an_idle_worker_with_a_long_interval_wakes_within_a_second(app, mailbox, workers):
    worker = workers(app, "lethe-waking", "--role", "mail", "--interval", "30")
    wait_for(lambda: worker.check_alive() or "worker started" in worker.output(), timeout=30)
    # Idle long enough to be deep in its wait (on SQLite its poll has grown past a second).
    time.sleep(3.0)
    (queued,) = _queue(app, emails=1)
    start = time.monotonic()
    wait_for(lambda: _outbox(app)[queued].status == "sent", timeout=5, interval=0.01)
    took = time.monotonic() - start
    worker.check_alive()
    assert took < 1.0, f"picked up after {took:.2f} s"
    assert _received_ids(mailbox, [queued]) == {queued: 1}


# --- stopping -------------------------------------------------------------------------------


class SlowMailbox(Mailbox):
    """An SMTP server that takes its time over each message: a batch is long enough to stop
    a worker in the middle of it."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.15)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp():
    from tests.conftest import _free_port

    handler = SlowMailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


def test_sigterm_mid_batch_finishes_the_message_in_hand_and_loses_nothing(
    app_factory, slow_smtp, workers
):
    app = app_factory(MAIL_PORT=slow_smtp.port, OUTBOX_BATCH=200)
    ids = _queue(app, emails=30, jobs_=10)
    worker = workers(app, "lethe-stopping", "--role", "mail,jobs", "--interval", "0.1")
    wait_for(
        lambda: worker.check_alive() or len(slow_smtp.handler.messages) >= 4,
        timeout=30,
        interval=0.01,
    )
    stopped_at = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0, worker.output()
    assert time.monotonic() - stopped_at < 2.0  # the message in hand, not the whole batch
    assert "worker stopped" in worker.output() and "Traceback" not in worker.output()

    rows = _outbox(app)
    received = _received_ids(slow_smtp.handler, ids)
    done = {i for i, m in rows.items() if m.status == "sent"}
    # Every message is either sent (once, and recorded so) or still queued as it was; none
    # is half-done: sent but not recorded, or a job claimed and left leased.
    assert {(m.status, m.attempts) for m in rows.values()} == {("sent", 1), ("pending", 0)}
    assert all(m.next_attempt_at <= utcnow() for m in rows.values() if m.status == "pending")
    assert set(received) == {i for i in done if rows[i].kind == "email"}
    assert set(received.values()) == {1}
    assert 4 <= len(received) < 30  # stopped mid-batch

    # The next worker sends the rest, each once.
    with app.app_context():
        jobs.run_due(limit=500, roles=["mail", "jobs"])
    assert {m.status for m in _outbox(app).values()} == {"sent"}
    assert _received_ids(slow_smtp.handler, ids) == Counter(
        {i: 1 for i, m in rows.items() if m.kind == "email"}
    )


def test_sigterm_ends_an_idle_workers_long_wait_at_once(app, workers):
    worker = workers(app, "lethe-idle", "--interval", "30")
    wait_for(lambda: worker.check_alive() or "worker started" in worker.output(), timeout=30)
    time.sleep(1.0)  # its first rounds done: waiting, for up to 30 s
    stopped_at = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0, worker.output()
    assert time.monotonic() - stopped_at < 2.0
    assert "worker stopped" in worker.output() and "Traceback" not in worker.output()


def test_a_storm_of_sigterms_still_stops_the_worker(app, workers):
    """A handler that took a lock (threading.Event.set) could be run again, by the next signal,
    inside its own critical section and wait on itself forever: CI caught a job worker hung
    that way after its master died. SIGTERMs back to back until it is gone (the old handler
    hung in about two runs of five): it stops, cleanly."""
    worker = workers(app, "lethe-storm", "--interval", "30")
    wait_for(lambda: worker.check_alive() or "worker started" in worker.output(), timeout=30)
    time.sleep(0.5)
    for _ in range(2000):
        if worker.proc.poll() is not None:
            break
        worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0, worker.output()
    assert "worker stopped" in worker.output() and "Traceback" not in worker.output()
