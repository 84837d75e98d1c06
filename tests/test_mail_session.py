"""One SMTP session per worker batch: the batch's emails go over one connection, opened at the
first email (none for a batch of jobs alone) and closed when the batch ends, even when it
raises; a server that hangs up between messages gets a new connection and the message again;
one refused message does not spoil the next. Against a real SMTP server (aiosmtpd) in a
thread that counts its connections."""

import asyncio
import email
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from rights import jobs
from rights.delivery import outbox
from storage import trace
from storage.db import db
from storage.models import OutboxMessage
from tests import factories
from tests.conftest import _free_port
from tests.helpers import deliver, wait_for

REFUSED = "refused@example.org"


class CountingServer:
    """An aiosmtpd handler that counts sessions (EHLOs: smtplib says it once a connection),
    sign-ins and QUITs, keeps what it receives, refuses ``REFUSED``, and — when ``hang_up``
    is set — closes the connection right after answering each message."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = self.quits = self.logins = 0
        self.messages: list[email.message.Message] = []
        self.hang_up = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        if self.hang_up:
            # After the 250 below is written (the transport flushes it before closing).
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.quits += 1
        return "221 Bye"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        if ok:
            with self.lock:
                self.logins += 1
        return AuthResult(success=ok)


@pytest.fixture
def server():
    handler = CountingServer()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=handler.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def app(app_factory, server):
    return app_factory(MAIL_PORT=server.port)


def _queue_emails(app, n: int, to=lambda i: f"person1+{i}@example.org") -> list[str]:
    with app.app_context():
        member = factories.member(1)
        ids = [
            outbox.enqueue_email(
                subject_id=member.subject_id,
                to=to(i),
                title=f"Message {i}",
                body="Hello.",
                topic="test.mail",
                request_id=None,
            ).id
            for i in range(n)
        ]
        db.session.commit()
    return ids


def _statuses(app) -> list[tuple[str, int]]:
    with app.app_context():
        rows = db.session.execute(select(OutboxMessage)).scalars()
        return sorted((m.status, m.attempts) for m in rows)


def test_one_connection_for_a_batch_of_emails(app, server):
    _queue_emails(app, 5)
    assert deliver(app)["sent"] == 5
    assert len(server.messages) == 5
    assert sorted(m["Subject"] for m in server.messages) == [f"Message {i}" for i in range(5)]
    assert server.sessions == 1
    wait_for(lambda: server.quits == 1)  # closed at the end of the batch

    # The next batch opens a session of its own.
    _queue_emails(app, 2)
    assert deliver(app)["sent"] == 2
    assert server.sessions == 2 and len(server.messages) == 7
    wait_for(lambda: server.quits == 2)


def test_a_batch_signs_in_once(app_factory, server):
    app = app_factory(MAIL_PORT=server.port, MAIL_USERNAME="lethe", MAIL_PASSWORD="s3cret")
    _queue_emails(app, 3)
    assert deliver(app)["sent"] == 3
    assert (server.sessions, server.logins, len(server.messages)) == (1, 1, 3)


def test_a_server_that_hangs_up_between_messages_still_gets_them_all(app, server):
    server.hang_up = True
    ids = _queue_emails(app, 5)
    assert deliver(app)["sent"] == 5
    # Every message arrived exactly once, each over a connection of its own.
    compact = sorted(i.replace("-", "") for i in ids)
    got = sorted(next(c for c in compact if c in m["Message-ID"]) for m in server.messages)
    assert got == compact
    assert server.sessions == 5
    assert _statuses(app) == [("sent", 1)] * 5


def test_a_refused_message_does_not_spoil_the_next(app, server):
    _queue_emails(app, 5, to=lambda i: REFUSED if i == 1 else f"person1+{i}@example.org")
    counts = deliver(app)
    assert (counts["sent"], counts["retry"]) == (4, 1)
    assert len(server.messages) == 4 and REFUSED not in {m["To"] for m in server.messages}
    assert server.sessions == 1  # the session was reset, not thrown away
    assert _statuses(app) == [("pending", 1)] + [("sent", 1)] * 4


def test_a_batch_of_jobs_alone_connects_to_nothing(app, server):
    with app.app_context():
        outbox.enqueue_job("request.resume_link", argument="NO-SUCH-1")
        db.session.commit()
    assert deliver(app)["sent"] == 1
    assert server.sessions == 0


def test_the_session_is_closed_when_the_batch_raises(app, server):
    _queue_emails(app, 3)
    with app.app_context():
        steps = outbox.deliver_due_steps(handlers=jobs.HANDLERS)
        next(steps)  # the first email is sent and settled; the runner would commit here
        assert server.sessions == 1 and len(server.messages) == 1
        with pytest.raises(RuntimeError, match="the commit failed"):
            steps.throw(RuntimeError("the commit failed"))
        db.session.rollback()
    wait_for(lambda: server.quits == 1)
    assert trace.current() is None  # the message's trace id was unbound too
