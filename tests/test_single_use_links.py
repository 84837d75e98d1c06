"""Emailed links are single-use under concurrency (outside test, issue 12 item 2): the same
link posted by N browsers at once is accepted once — one "verified" event, one audit entry,
one erasure job — on every database, behind a server of several processes."""

import re

from sqlalchemy import func, select

from rights.lifecycle import requests as lifecycle
from storage.db import db
from storage.models import AuditEvent, OutboxMessage, RequestEvent, RightsRequest
from tests import factories
from tests.helpers import deliver
from tests.processes import race, serve

N = 8


def test_the_same_link_posted_by_n_processes_at_once_is_accepted_once(app, mailbox):
    with app.app_context():
        factories.member(1)
        req = lifecycle.file(
            type="erasure", email="person1@example.org", channel="web", actor="subject"
        )
        db.session.commit()
        request_id = req.id
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    path = re.search(r"http://lethe\.test(/verify/\S+)", body).group(1)

    with serve(app, kind="gunicorn", workers=4) as url:
        statuses = race([url + path] * N)

    assert sorted(statuses) == [303] + [400] * (N - 1), statuses
    with app.app_context():
        assert db.session.get(RightsRequest, request_id).status == "in_progress"

        def count(model, *where):
            return db.session.execute(select(func.count()).select_from(model).where(*where))

        assert (
            count(
                RequestEvent, RequestEvent.request_id == request_id, RequestEvent.kind == "verified"
            ).scalar_one()
            == 1
        )
        assert (
            count(
                OutboxMessage,
                OutboxMessage.request_id == request_id,
                OutboxMessage.topic == "erasure.run",
            ).scalar_one()
            == 1
        )
        verified_audits = db.session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.target == f"request:{request_id}",
                AuditEvent.action == "request.verified",
            )
        ).scalar_one()
        assert verified_audits == 1
