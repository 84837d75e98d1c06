"""One handler per right: every request type has one, and a right the lifecycle has never heard
of goes from filing to completion once its handler is registered, with no edit to the
lifecycle."""

import re

import pytest
from sqlalchemy import select

from rights.errors import Invalid, InvalidTransition
from rights.lifecycle import handlers, requests
from storage import vault
from storage.db import db
from storage.models import OutboxMessage, RequestType
from tests import factories


class SaleOptOut(handlers.RightHandler):
    """An eighth right (the CCPA's opt-out of sale), known only to this test. It keys the
    registry by a plain string: ``RequestType`` is an enum of the seven and rejects it, which
    is why the registry is keyed by the type as stored on the request."""

    type = "sale_opt_out"
    name = "an end to the sale of your data"

    def __init__(self):
        self.calls = []

    def on_verified(self, request):
        self.calls.append(("verified", request.status))

    def approve(self, request, *, actor, note, profile):
        self.calls.append(("approved", request.status))
        super().approve(request, actor=actor, note=note, profile=profile)

    def on_completed(self, request, *, notify):
        self.calls.append(("completed", request.status))
        super().on_completed(request, notify=notify)

    def officer_actions(self, request, actions):
        return actions - {"extend"}  # an opt-out is never worth more time


@pytest.fixture
def sale_opt_out():
    handler = SaleOptOut()
    handlers.register(handler)
    yield handler
    handlers.unregister(handler.type)


def _emails(request) -> dict[str, dict]:
    """The emails queued for the request, by topic (each topic is sent once here)."""
    rows = db.session.execute(
        select(OutboxMessage).where(
            OutboxMessage.request_id == request.id, OutboxMessage.kind == "email"
        )
    ).scalars()
    return {
        m.topic: vault.decrypt_json(m.subject_id, "outbox.payload_enc", m.payload_enc) for m in rows
    }


def test_every_request_type_has_a_handler(app):
    for type_ in RequestType:
        handler = handlers.handler_for(type_)
        assert handler.type == type_
        assert handler.name
    assert {t.value for t in RequestType} <= handlers.types()
    answered_from_data_map = {t for t in RequestType if handlers.handler_for(t).self_service}
    assert answered_from_data_map == {RequestType.ACCESS, RequestType.PORTABILITY}
    naming_records = {t for t in RequestType if handlers.handler_for(t).names_records}
    assert naming_records == {RequestType.RECTIFICATION, RequestType.RESTRICTION}


def test_a_type_with_no_handler_is_named_in_the_error(app):
    with pytest.raises(handlers.UnknownRight, match="'sale_opt_out'"):
        handlers.handler_for("sale_opt_out")
    with app.app_context(), pytest.raises(Invalid, match="Unknown request type"):
        requests.file(type="sale_opt_out", email="pat@example.org", channel="web", actor="s")


def test_a_right_has_one_handler(app, sale_opt_out):
    with pytest.raises(ValueError, match="already registered"):
        handlers.register(SaleOptOut())
    handlers.register(sale_opt_out)  # the same handler again changes nothing
    assert handlers.handler_for("sale_opt_out") is sale_opt_out


def test_an_eighth_right_goes_through_the_lifecycle(app, sale_opt_out):
    with app.app_context():
        req = requests.file(
            type="sale_opt_out", email="pat@example.org", channel="web", actor="subject"
        )
        assert req.status == "awaiting_verification"
        assert requests.allowed_actions(req) == {"ask", "verify", "refuse", "cancel"}
        link = _emails(req)["notice.verify"]["body"]
        assert "We received a request for an end to the sale of your data." in link
        token = re.search(r"/verify/(\S+)", link).group(1)

        assert requests.confirm(token) is req
        assert req.status == "open"
        assert requests.allowed_actions(req) == {"ask", "approve", "refuse", "cancel"}
        requests.approve(req, actor="officer:1", note="Passed on to the ad partners.")
        db.session.commit()

        assert req.status == "completed" and req.decision == "granted"
        assert sale_opt_out.calls == [
            ("verified", "open"),
            ("approved", "open"),
            ("completed", "completed"),
        ]
        assert [e.kind for e in requests.events(req)] == [
            "received",
            "verification_sent",
            "verified",
            "approved",
            "completed",
        ]
        emails = _emails(req)
        assert set(emails) == {"notice.verify", "notice.received", "notice.completed"}
        done = emails["notice.completed"]["body"]
        assert "We have completed your request for an end to the sale of your data." in done
        assert not requests.downloads_available(req)  # not answered from the data map
        assert requests.allowed_actions(req) == set()


def test_an_eighth_right_can_be_refused_and_holds_nothing_back(app, sale_opt_out):
    with app.app_context():
        factories.member(1)
        req = requests.file(
            type="sale_opt_out", member_id="m-1", channel="api", verified=True, actor="platform"
        )
        assert sale_opt_out.calls == [("verified", "open")]
        with pytest.raises(InvalidTransition):
            requests.point_at(req, ["aw-1"])
        requests.refuse(req, reason="We do not sell data.", actor="officer:1")
        db.session.commit()
        assert req.status == "refused"
        refusal = _emails(req)["notice.refused"]["body"]
        assert "not to act on your request for an end to the sale of your data" in refusal
        assert "hold ends" not in refusal
