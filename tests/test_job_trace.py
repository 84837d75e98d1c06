"""A request's id follows its work into the worker: every outbox message carries the id of the
HTTP request that queued it (``outbox.trace_id``), what a job queues carries its job's, and the
worker writes one JSON line per message (email, job, webhook delivery) on ``lethe.jobs`` with
that id and no personal data. A message queued outside any request or job starts a trace of its
own (a new uuid4 hex)."""

import json
import logging
import re

from sqlalchemy import select

from rights.delivery import outbox
from rights.recipients import webhooks
from storage import trace
from storage.db import db
from storage.models import OutboxMessage, RightsRequest
from tests import factories
from tests.conftest import _free_port
from tests.helpers import deliver
from tests.test_webhooks import Receiver

EMAIL = "person1@example.org"
NAME = "Person 1"
NEW_ID = re.compile(r"[0-9a-f]{32}")


def _job_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == trace.JOBS_LOG]


def _rows(app) -> list[tuple[str, str, str, str | None]]:
    """(kind, topic, status, trace_id) of every outbox message."""
    with app.app_context():
        rows = db.session.execute(select(OutboxMessage)).scalars()
        return [(m.kind, m.topic, m.status, m.trace_id) for m in rows]


def _verify_an_erasure(app, client, mailbox) -> str:
    """A member files an erasure on the public pages (request id ``file-1``), gets the link
    (the worker sends it) and confirms it (request id ``abc-123``). Returns the reference."""
    with app.app_context():
        factories.member(1)
        factories.commit()
    filed = client.post(
        "/requests/new",
        data={"type": "erasure", "email": EMAIL},
        headers={"X-Request-ID": "file-1"},
    )
    assert filed.status_code == 303
    deliver(app)
    body = mailbox.body(mailbox.last_to(EMAIL))
    path = re.search(r"http://lethe\.test(/verify/[A-Za-z0-9_\-]+)", body).group(1)
    confirmed = client.post(path, headers={"X-Request-ID": "abc-123"})
    assert confirmed.status_code == 303
    assert confirmed.headers["X-Request-ID"] == "abc-123"
    with app.app_context():
        return db.session.execute(select(RightsRequest.reference)).scalar_one()


def test_what_a_request_queues_carries_its_id_and_so_does_what_its_job_queues(
    app, client, mailbox, caplog
):
    caplog.set_level(logging.INFO, logger=trace.JOBS_LOG)
    reference = _verify_an_erasure(app, client, mailbox)
    # The verification email was queued by the filing request; confirming queued the
    # acknowledgement and the erasure's job, both under the confirming request's id.
    assert sorted(_rows(app)) == [
        ("email", "notice.received", "pending", "abc-123"),
        ("email", "notice.verify", "sent", "file-1"),
        ("job", "erasure.run", "pending", "abc-123"),
    ]

    caplog.clear()
    deliver(app)
    # The job's own messages (the downstream event, the last email to the erased person) were
    # queued in the worker, outside any request: they carry the job's trace id. (The erasure
    # removed the person's earlier emails from the outbox.)
    assert sorted(_rows(app)) == [
        ("email", "notice.erased", "sent", "abc-123"),
        ("event", "subject.erased", "sent", "abc-123"),
        ("job", "erasure.run", "sent", "abc-123"),
    ]

    lines = _job_lines(caplog)
    assert sorted((x["kind"], x["topic"], x["outcome"]) for x in lines) == [
        ("email", "notice.erased", "sent"),
        ("email", "notice.received", "sent"),
        ("job", "erasure.run", "sent"),
    ]
    for line in lines:
        assert set(line) == {"kind", "topic", "outcome", "attempt", "duration_ms", "request_id"}
        assert line["request_id"] == "abc-123" and line["attempt"] == 1
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    # No personal data: no address, name, reference, subject or request id in any line.
    with app.app_context():
        subject_ids = {
            s for s in db.session.execute(select(OutboxMessage.subject_id)).scalars() if s
        }
        request_ids = set(db.session.execute(select(RightsRequest.id)).scalars())
    raw = "\n".join(r.getMessage() for r in caplog.records if r.name == trace.JOBS_LOG)
    for leak in (EMAIL, "person1", NAME, reference, *subject_ids, *request_ids):
        assert leak not in raw


def test_a_failed_email_is_logged_with_its_error_class_only(app_factory, caplog):
    """Nothing listens on the mail port: the email is retried, and its line says retry and
    the exception's class, never its text."""
    app = app_factory(MAIL_PORT=_free_port())
    caplog.set_level(logging.INFO, logger=trace.JOBS_LOG)
    with app.app_context():
        member = factories.member(1)
        with trace.bound("retry-7"):
            outbox.enqueue_email(
                subject_id=member.subject_id,
                to=EMAIL,
                title="Hello",
                body="Hello.",
                topic="test.mail",
                request_id=None,
            )
        db.session.commit()
    assert deliver(app)["retry"] == 1
    (line,) = _job_lines(caplog)
    assert line["outcome"] == "retry" and line["attempt"] == 1
    assert line["request_id"] == "retry-7"
    assert line["error"] == "ConnectionRefusedError"
    assert EMAIL not in caplog.text


def test_a_message_queued_outside_any_request_starts_a_trace_of_its_own(app, client):
    # A request that is over leaves nothing bound behind it (its teardown unbinds its id).
    assert client.get("/healthz", headers={"X-Request-ID": "over-1"}).status_code == 200
    assert trace.current() is None
    with app.app_context():
        first = outbox.enqueue_job("request.resume_link", argument="NO-SUCH-1")
        second = outbox.enqueue_job("request.resume_link", argument="NO-SUCH-2")
        db.session.commit()
        assert NEW_ID.fullmatch(first.trace_id) and NEW_ID.fullmatch(second.trace_id)
        assert first.trace_id != second.trace_id
        with trace.bound("cli-run-9"):
            assert outbox.enqueue_job("request.resume_link", argument="X").trace_id == "cli-run-9"
        assert trace.current() is None


def test_a_message_without_a_trace_id_is_still_delivered(app, mailbox, caplog):
    """Messages queued before the column existed have none: their line says null, and what
    their job queues starts a trace of its own."""
    caplog.set_level(logging.INFO, logger=trace.JOBS_LOG)
    with app.app_context():
        member = factories.member(1)
        msg = outbox.enqueue_email(
            subject_id=member.subject_id,
            to=EMAIL,
            title="Hello",
            body="Hello.",
            topic="test.mail",
            request_id=None,
        )
        msg.trace_id = None
        db.session.commit()
    assert deliver(app)["sent"] == 1
    (line,) = _job_lines(caplog)
    assert line["request_id"] is None and line["outcome"] == "sent"


def test_webhook_deliveries_of_a_job_s_event_are_logged_with_the_request_id(
    app_factory, mailbox, caplog
):
    app = app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
    receiver = Receiver()
    try:
        with app.app_context():
            webhooks.add("Nova brand", receiver.url, ["subject.erased"], actor="t")
            db.session.commit()
        caplog.set_level(logging.INFO, logger=trace.JOBS_LOG)
        reference = _verify_an_erasure(app, app.test_client(), mailbox)
        caplog.clear()
        deliver(app)
        assert len(receiver.received) == 1
    finally:
        receiver.close()
    (line,) = [x for x in _job_lines(caplog) if x["kind"] == "webhook"]
    assert line == {
        "kind": "webhook",
        "topic": "subject.erased",
        "outcome": "delivered",
        "attempt": 1,
        "duration_ms": line["duration_ms"],
        "request_id": "abc-123",
        "status_code": 200,
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    raw = "\n".join(r.getMessage() for r in caplog.records if r.name == trace.JOBS_LOG)
    for leak in (EMAIL, NAME, reference, receiver.url, "127.0.0.1"):
        assert leak not in raw
