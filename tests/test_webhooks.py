"""Signed webhooks (Standard Webhooks 1.0) with guaranteed delivery: a receiver verifying with
the standardwebhooks library accepts every delivery; retries keep the webhook-id and back off
(time moved with a frozen clock); 410 disables; exhausted deliveries are dead-lettered;
subscribers confirm through the API; internal targets are refused."""

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rights.erasure import erasure, statements
from rights.errors import Invalid
from rights.ledger import apikeys, signing
from rights.lifecycle import requests
from rights.recipients import downstream, webhooks
from storage.clock import utcnow
from storage.db import db
from storage.models import AuditEvent, Delivery, RecipientIdentifier, Subscriber
from tests import factories
from tests.helpers import API, deliver


class Receiver:
    """A local HTTP receiver answering with the codes it is given, recording what came."""

    def __init__(self):
        self.received = []
        self.codes = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append((dict(self.headers.items()), body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hooks_app(app_factory):
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


def _subscribe(app, url, events=("subject.restricted", "subject.rectified"), name="Nova brand"):
    with app.app_context():
        sub, secret, key = webhooks.add(name, url, list(events), actor="t")
        db.session.commit()
        return sub.id, secret, {"Authorization": f"Bearer {key}"}


def _event(app, n=1):
    """A rectification that holds an award back: one subject.restricted event."""
    with app.app_context():
        factories.member(n)
        factories.award(n, n, status="received")
        requests.file(
            type="rectification",
            member_id=f"m-{n}",
            channel="api",
            verified=True,
            actor="t",
            details={"records": [f"aw-{n}"], "correction": "never came"},
        )
        db.session.commit()


def _headers(raw: dict) -> dict:
    return {k.lower(): v for k, v in raw.items()}


def test_a_standard_webhooks_receiver_accepts_every_delivery(hooks_app, receiver):
    _, secret, _ = _subscribe(hooks_app, receiver.url)
    _event(hooks_app, 1)
    _event(hooks_app, 2)
    deliver(hooks_app)
    assert len(receiver.received) == 2
    for raw, body in receiver.received:
        headers = _headers(raw)
        payload = Webhook(secret).verify(body, headers)
        assert payload["type"] == "subject.restricted"
        assert payload["subject"].startswith("sub_") and "@" not in body
        assert headers["webhook-id"] == payload["delivery"]
        # A tampered body, or an old timestamp, is refused by the same library.
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body.replace("restricted", "rectified"), headers)
        stale = {**headers, "webhook-timestamp": str(int(utcnow().timestamp()) - 3600)}
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, stale)


def test_art19_events_go_to_every_recipient_the_others_to_who_asked(hooks_app, receiver):
    """Rectification, erasure and restriction are told to every recipient (Art. 19); an
    objection only to those that subscribed to it."""
    sub_id, _, _ = _subscribe(hooks_app, receiver.url, events=("consent.withdrawn",))
    _event(hooks_app)  # subject.restricted
    with hooks_app.app_context():
        downstream.announce("subject.objected", {"type": "subject.objected"})
        db.session.commit()
        assert set(db.session.get(Subscriber, sub_id).events) == {
            "consent.withdrawn",
            *webhooks.ALWAYS,
        }
    deliver(hooks_app)
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["subject.restricted"]


def test_retries_keep_the_id_and_back_off(hooks_app, receiver):
    _subscribe(hooks_app, receiver.url)
    receiver.codes = [500, 503]
    _event(hooks_app)
    with freeze_time(utcnow()) as frozen:
        deliver(hooks_app)
        assert len(receiver.received) == 1
        deliver(hooks_app)  # not due yet: nothing sent
        assert len(receiver.received) == 1
        frozen.tick(timedelta(seconds=40))
        deliver(hooks_app)
        frozen.tick(timedelta(seconds=80))
        deliver(hooks_app)
    ids = {_headers(h)["webhook-id"] for h, _ in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1
    with hooks_app.app_context():
        delivery = db.session.execute(select(Delivery)).scalar_one()
        assert delivery.status == "delivered" and delivery.attempts == 3


def test_a_receiver_that_is_down_ends_in_the_dead_letter_list(hooks_app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    _subscribe(hooks_app, f"http://127.0.0.1:{port}/hooks")
    _event(hooks_app)
    start = utcnow()
    with freeze_time(start) as frozen:
        for _ in range(webhooks.MAX_ATTEMPTS + 2):
            deliver(hooks_app)
            frozen.tick(timedelta(hours=15))  # past the longest backoff (12 h + 20% jitter)
    with hooks_app.app_context():
        delivery = db.session.execute(select(Delivery)).scalar_one()
        assert delivery.status == "dead" and delivery.attempts == webhooks.MAX_ATTEMPTS
        assert delivery.last_error
        # An admin puts it back in line, with the same id.
        again = webhooks.redeliver(delivery.id, actor="officer:1")
        db.session.commit()
        assert again.status == "pending" and again.id == delivery.id


def test_410_disables_the_subscription(hooks_app, receiver):
    sub_id, _, _ = _subscribe(hooks_app, receiver.url)
    receiver.codes = [410]
    _event(hooks_app, 1)
    deliver(hooks_app)
    _event(hooks_app, 2)
    deliver(hooks_app)
    assert len(receiver.received) == 1
    with hooks_app.app_context():
        sub = db.session.get(Subscriber, sub_id)
        assert sub.active is False and "410" in sub.disabled_reason


def test_subscribers_confirm_their_own_deliveries(hooks_app, receiver):
    _, _, key = _subscribe(hooks_app, receiver.url)
    _, _, other_key = _subscribe(hooks_app, receiver.url)
    _event(hooks_app)
    client = hooks_app.test_client()
    with hooks_app.app_context():  # the deliveries exist with the event, none is sent yet
        first = (
            db.session.execute(select(Delivery).order_by(Delivery.subscriber_id)).scalars().first()
        )
        delivery_id = first.id
    early = client.post(f"{API}/deliveries/{delivery_id}/confirm", headers=key)
    assert early.status_code == 422  # not delivered yet
    deliver(hooks_app)
    assert (
        client.post(f"{API}/deliveries/{delivery_id}/confirm", headers=other_key).status_code == 403
    )
    assert client.post(f"{API}/deliveries/msg_nope/confirm", headers=key).status_code == 404
    resp = client.post(f"{API}/deliveries/{delivery_id}/confirm", headers=key)
    assert resp.status_code == 200 and resp.get_json()["status"] == "confirmed"


def test_internal_targets_are_refused(app):
    with app.app_context():
        for url in (
            "http://127.0.0.1:8080/hooks",
            "http://10.0.0.5/hooks",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x",
            "ftp://example.com/x",
        ):
            with pytest.raises(Invalid):
                webhooks.add("x", url, ["subject.erased"], actor="t")


def test_the_cli_adds_a_subscriber_and_shows_the_secret_once(hooks_app, receiver):
    result = hooks_app.test_cli_runner().invoke(
        args=["subscribers", "add", receiver.url, "--events", "subject.erased", "--name", "Ads"]
    )
    assert result.exit_code == 0, result.output
    secret = next(line for line in result.output.splitlines() if "whsec_" in line).split()[-1]
    with hooks_app.app_context():
        sub = db.session.execute(select(Subscriber)).scalar_one()
        assert secret.encode() not in sub.secret_enc
    bad = hooks_app.test_cli_runner().invoke(
        args=["subscribers", "add", receiver.url, "--events", "nope", "--name", "Ads"]
    )
    assert bad.exit_code != 0 and "known events" in bad.output


def _platform_key(app) -> dict:
    with app.app_context():
        _, key = apikeys.create("platform", ["records:write"], actor="t")
        db.session.commit()
    return {"Authorization": f"Bearer {key}"}


def test_subscribers_identifiers_are_recorded_forgotten_and_checked(hooks_app, receiver):
    sub_id, _, _ = _subscribe(hooks_app, receiver.url)
    with hooks_app.app_context():
        factories.member(1)
        db.session.commit()
    client, key = hooks_app.test_client(), _platform_key(hooks_app)
    body = {"member_id": "m-1", "subscriber_id": sub_id, "identifier": "NOVA-77"}
    resp = client.post(f"{API}/recipient-identifiers", json=body, headers=key)
    assert resp.status_code == 200 and resp.get_json()["recorded"] is True
    with hooks_app.app_context():
        row = db.session.execute(select(RecipientIdentifier)).scalar_one()
        assert b"NOVA-77" not in row.identifier_enc  # under the subject's key
    for bad, field in (
        ({**body, "subscriber_id": 999}, "subscriber_id"),
        ({**body, "member_id": "m-404"}, "member_id"),
        ({**body, "subscriber_id": "1"}, "subscriber_id"),
        ({**body, "subscriber_id": 2**31}, "subscriber_id"),
        ({**body, "identifier": ""}, "identifier"),
    ):
        resp = client.post(f"{API}/recipient-identifiers", json=bad, headers=key)
        assert resp.status_code == 422 and field in resp.get_json()["error"]["fields"]
    with hooks_app.app_context():  # an event not yet sent carries a copy for this recipient
        req = requests.file(
            type="restriction", member_id="m-1", channel="api", verified=True, actor="t"
        )
        downstream.tell("subject.restricted", req, [], "hold")
        db.session.commit()
        (delivery,) = db.session.execute(select(Delivery)).scalars().all()
        assert json.loads(webhooks.body_of(delivery))["recipient_subject_id"] == "NOVA-77"
    forget = client.post(
        f"{API}/recipient-identifiers", json={**body, "identifier": None}, headers=key
    )
    assert forget.status_code == 200 and forget.get_json()["recorded"] is False
    with hooks_app.app_context():
        assert db.session.execute(select(RecipientIdentifier)).first() is None
        # Forgotten everywhere: the copy the unsent delivery carried went too.
        (delivery,) = db.session.execute(select(Delivery)).scalars().all()
        assert "recipient_subject_id" not in json.loads(webhooks.body_of(delivery))
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
        assert {"recipient_identifier.set", "recipient_identifier.forgotten"} <= set(actions)
        assert "NOVA-77" not in json.dumps(
            [e.details for e in db.session.execute(select(AuditEvent)).scalars()]
        )


def test_an_erasure_tells_each_recipient_in_its_own_terms_and_statements_follow_it(
    hooks_app, receiver
):
    """subject.erased carries the subscriber's own identifier and the records it may hold; the
    receipt names the recipients, the former member's statement shows each one's state."""
    sub_id, secret, confirm_key = _subscribe(hooks_app, receiver.url, events=())
    other_id, other_secret, _ = _subscribe(hooks_app, receiver.url, events=(), name="Ads system")
    with hooks_app.app_context():
        member = factories.member(1)
        factories.award(1, 1, status="received")
        webhooks.set_identifier(sub_id, member.subject_id, "NOVA-77", actor="t")
        webhooks.set_identifier(other_id, member.subject_id, "ADS-1", actor="t")
        req = requests.file(
            type="erasure", member_id="m-1", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        rid = req.id
    deliver(hooks_app)  # runs the erasure, then delivers its event to both recipients
    assert len(receiver.received) == 2
    payloads = {}
    for raw, body in receiver.received:
        for key in (secret, other_secret):
            try:
                payload = Webhook(key).verify(body, _headers(raw))
            except WebhookVerificationError:
                continue
            payloads[key] = (payload, body)
    (payload, body), (other, other_body) = payloads[secret], payloads[other_secret]
    assert payload["type"] == other["type"] == "subject.erased"
    # Each recipient is told in its own terms, and learns nobody else's.
    assert payload["recipient_subject_id"] == "NOVA-77" and "ADS-1" not in body
    assert other["recipient_subject_id"] == "ADS-1" and "NOVA-77" not in other_body
    assert {"type": "perk_awards", "id": "aw-1"} in payload["records"]
    assert "@" not in body and "Person 1" not in body
    with hooks_app.app_context():
        # Lethe's copy of the identifier went with the rest of the person's data, and each
        # delivery's own copy once it was delivered.
        assert db.session.execute(select(RecipientIdentifier)).first() is None
        assert all(
            d.recipient_ref_enc is None for d in db.session.execute(select(Delivery)).scalars()
        )
        receipt = erasure.receipt_for(requests.get(rid))
        claims = signing.verify(receipt.jws, signing.RECEIPT_TYP)
        assert sorted((r["recipient"], r["event"], r["state"]) for r in claims["recipients"]) == [
            ("Ads system", "subject.erased", "pending"),
            ("Nova brand", "subject.erased", "pending"),
        ]
        # Issue 15: the receipt also lists who the data map says must be told ("told"); a
        # subscriber speaking for no recipient of the map is listed under its own name.
        named = {r["name"]: r for r in claims["told"]["recipients"]}
        assert named["Nova brand"]["recipient"] is None and not named["Nova brand"]["required"]
        assert named["Nova brand"]["state"] == named["Ads system"]["state"] == "pending"
        assert {r["recipient"] for r in claims["told"]["recipients"] if r["required"]}
        record_key = erasure.reveal_record_key(receipt)
        db.session.commit()
    client = hooks_app.test_client()
    resp = client.post(f"{API}/deliveries/{payload['delivery']}/confirm", headers=confirm_key)
    assert resp.status_code == 200
    with hooks_app.app_context():
        _, statement = statements.for_record_key(record_key)
        states = {r["recipient"]: r for r in statement["recipients"]}
        assert states["Nova brand"]["state"] == "confirmed" and states["Nova brand"]["confirmed_at"]
        assert states["Ads system"]["state"] == "delivered"
        named = {r["name"]: r["state"] for r in statement["told"]["recipients"]}
        assert named["Nova brand"] == "confirmed" and named["Ads system"] == "delivered"
    page = client.post("/records", data={"record_key": record_key}).get_data(as_text=True)
    assert "Who we told" in page and "Nova brand" in page and "confirmed they acted" in page
