"""The demo tells the whole story (issue 15): with a receiver (``flask demo load --receiver``,
as ``make run`` does), the brand and a disclosure-list consumer are webhook subscribers served
by demo/receiver.py, which checks each delivery's Standard Webhooks signature and timestamp and
confirms it through Lethe's API — so once an officer approves Sam's correction, his request's
page shows them told, then confirmed. Without a receiver, the demo subscribes nobody."""

import json
import os
import re
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.test import Client

from demo import loader as demo
from demo.receiver import Receiver
from rights.ledger import apikeys
from rights.lifecycle import requests
from rights.recipients import webhooks
from storage.db import db
from storage.models import ApiKey, Delivery, Member, RightsRequest, Subscriber
from tests.helpers import deliver

DELIVERY = "msg_" + "0123456789abcdef01234567"
SECRET = webhooks.new_secret()
BODY = json.dumps({"type": "subject.rectified", "delivery": DELIVERY, "subject": "sub_1"})


@pytest.fixture
def hooks_app(app_factory):
    # The receiver listens on 127.0.0.1: what `make run` allows in development only.
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


@pytest.fixture
def served():
    """Serve a receiver on a free local port (in a thread) for as long as the test runs."""
    servers = []

    def serve(receiver: Receiver) -> str:
        server = make_server("127.0.0.1", 0, receiver, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()


def through(app):
    """The receiver's way to Lethe's API: here the test app's client (there, HTTP)."""
    client = app.test_client()
    calls = []

    def post(url: str, headers: dict) -> int:
        calls.append((url, headers))
        return client.post(url.removeprefix(app.config["PUBLIC_URL"]), headers=headers).status_code

    post.calls = calls
    return post


def signed(body: str = BODY, secret: str = SECRET, at: datetime | None = None, msg=DELIVERY):
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg, at, body),
        "content-type": "application/json",
    }


def _receiver_file(tmp_path, **extra) -> str:
    path = tmp_path / "demo-receiver.json"
    entry = {"slug": "nova-mobile", "name": "Nova Mobile", "subscriber_id": 1}
    path.write_text(
        json.dumps(
            {
                "lethe_url": "http://lethe.test",
                "subscribers": [{**entry, "secret": SECRET, "api_key": "lethe_demo", **extra}],
            }
        )
    )
    return str(path)


def _story_request(app) -> str:
    with app.app_context():
        sam = db.session.execute(
            select(Member).where(Member.external_id == demo.STORY_MEMBER)
        ).scalar_one()
        return db.session.execute(
            select(RightsRequest.id).where(
                RightsRequest.subject_id == sam.subject_id, RightsRequest.type == "rectification"
            )
        ).scalar_one()


def test_after_sams_correction_his_page_shows_the_recipients_told_and_confirmed(
    hooks_app, served, mailbox
):
    app = hooks_app
    with app.app_context():
        path = demo.receiver_file()
    lethe = through(app)
    receiver = Receiver(path, post=lethe, retry_seconds=0.05)
    url = served(receiver)
    with app.app_context():
        written = demo.subscribe_receiver(url)
        demo.load(extra_members=1)
        db.session.commit()
        demo.write_receiver_file(written)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with app.app_context():
        subscribers = db.session.execute(select(Subscriber).order_by(Subscriber.id)).scalars()
        assert [(s.name, s.recipient, s.url) for s in subscribers] == [
            ("Nova Mobile", "brand", f"{url}/hooks/nova-mobile"),
            ("ReviewHub (disclosure-list consumer)", "list_consumers", f"{url}/hooks/reviewhub"),
        ]

    # The officer approves Sam's correction; the worker tells both; both confirm.
    story = _story_request(app)
    with app.app_context():
        requests.approve(requests.get(story), actor="officer:1")
        db.session.commit()
    counts = deliver(app)
    assert counts["webhooks_delivered"] == 4  # his hold (when filed), then the correction
    receiver.drain(timeout=10)
    assert len(receiver.confirmed) == 4
    with app.app_context():
        states = db.session.execute(
            select(Subscriber.name, Delivery.status, func.count())
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.request_id == story)
            .group_by(Subscriber.name, Delivery.status)
        ).all()
        assert sorted(states) == [
            ("Nova Mobile", "confirmed", 2),
            ("ReviewHub (disclosure-list consumer)", "confirmed", 2),
        ]
    # Each confirmation used that subscriber's own key, on the API's confirm endpoint.
    assert {c[0].rsplit("/", 2)[-2] for c in lethe.calls} == set(receiver.confirmed)

    # Sam follows the link in his completion email: one POST, and his page says so.
    body = mailbox.body(mailbox.last_to(demo.STORY_EMAIL))
    link = re.search(r"http://lethe\.test(/resume/\S+)", body).group(1)
    sam = app.test_client()
    page = sam.get(sam.post(link).headers["Location"]).get_data(as_text=True)
    told = page.split('id="recipients"', 1)[1].split("</section>", 1)[0]
    assert "told" in told.lower() and told.lower().count("confirmed") >= 2, told


def test_the_receiver_confirms_a_correctly_signed_delivery(tmp_path):
    calls = []
    receiver = Receiver(_receiver_file(tmp_path), post=lambda u, h: calls.append((u, h)) or 200)
    answer = Client(receiver).post("/hooks/nova-mobile", data=BODY, headers=signed())
    assert answer.status_code == 204
    receiver.drain()
    assert receiver.confirmed == [DELIVERY]
    assert calls == [
        (
            f"http://lethe.test/api/v1/deliveries/{DELIVERY}/confirm",
            {"Authorization": "Bearer lethe_demo", "Accept": "application/json"},
        )
    ]


def test_a_confirmation_lethe_is_not_ready_for_is_tried_again(tmp_path):
    answers = [422, 0, 200]  # not delivered yet (Lethe settles after the answer), unreachable
    receiver = Receiver(_receiver_file(tmp_path), post=lambda u, h: answers.pop(0), retry_seconds=0)
    Client(receiver).post("/hooks/nova-mobile", data=BODY, headers=signed())
    receiver.drain()
    assert receiver.confirmed == [DELIVERY] and answers == []


@pytest.mark.parametrize(
    "headers",
    [
        # Headers are signed when the test runs, not when it is collected: in a long run a
        # timestamp taken at collection drifts into the receiver's five-minute window.
        pytest.param(lambda: signed(secret=webhooks.new_secret()), id="another-secret"),
        pytest.param(lambda: signed(body=BODY.replace("rectified", "erased")), id="another-body"),
        pytest.param(lambda: signed(at=datetime.now(UTC) - timedelta(minutes=10)), id="stale"),
        pytest.param(
            lambda: signed(at=datetime.now(UTC) + timedelta(minutes=10)), id="from-the-future"
        ),
        pytest.param(lambda: {**signed(), "webhook-signature": "v1,not-base64!"}, id="garbled"),
        pytest.param(lambda: {"content-type": "application/json"}, id="unsigned"),
    ],
)
def test_the_receiver_refuses_what_is_not_signed_now_by_lethe(tmp_path, headers):
    calls = []
    receiver = Receiver(_receiver_file(tmp_path), post=lambda u, h: calls.append(u) or 200)
    answer = Client(receiver).post("/hooks/nova-mobile", data=BODY, headers=headers())
    assert answer.status_code == 401
    receiver.drain()
    assert calls == [] and receiver.confirmed == []


def test_the_receiver_answers_only_its_subscribers_posts(tmp_path):
    receiver = Receiver(_receiver_file(tmp_path), post=lambda u, h: 200)
    client = Client(receiver)
    assert client.post("/hooks/someone-else", data=BODY, headers=signed()).status_code == 404
    assert client.get("/hooks/nova-mobile").status_code == 405
    assert client.post("/", data=BODY, headers=signed()).status_code == 404
    assert receiver.pending.empty()


def test_the_demo_subscribes_nobody_without_a_receiver(app):
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        assert db.session.execute(select(func.count(Subscriber.id))).scalar_one() == 0
        assert db.session.execute(select(func.count(Delivery.id))).scalar_one() == 0
        assert not demo.receiver_file().exists()


def test_demo_load_with_a_receiver_is_idempotent_and_rekeys_a_lost_file(hooks_app):
    runner = hooks_app.test_cli_runner()
    url = "http://127.0.0.1:5999"
    first = runner.invoke(args=["demo", "load", "--members", "1", "--receiver", url])
    assert first.exit_code == 0, first.output
    with hooks_app.app_context():
        path = demo.receiver_file()
    assert "mode 0600" in first.output and str(path) in first.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    kept = json.loads(path.read_text())
    assert kept["lethe_url"] == hooks_app.config["PUBLIC_URL"]
    assert [s["slug"] for s in kept["subscribers"]] == ["nova-mobile", "reviewhub"]
    # Again: nothing new, the file as it was.
    again = runner.invoke(args=["demo", "load", "--members", "1", "--receiver", url])
    assert again.exit_code == 0 and "already loaded" in again.output
    assert "written" not in again.output and json.loads(path.read_text()) == kept
    # The file lost: the same subscribers, with new secrets and keys (the old keys revoked).
    path.unlink()
    third = runner.invoke(args=["demo", "load", "--members", "1", "--receiver", url])
    assert third.exit_code == 0, third.output
    fresh = json.loads(path.read_text())
    for old, new in zip(kept["subscribers"], fresh["subscribers"], strict=True):
        assert new["subscriber_id"] == old["subscriber_id"]
        assert new["secret"] != old["secret"] and new["api_key"] != old["api_key"]
    with hooks_app.app_context():
        assert db.session.execute(select(func.count(Subscriber.id))).scalar_one() == 2
        for old, new in zip(kept["subscribers"], fresh["subscribers"], strict=True):
            assert apikeys.authenticate(old["api_key"]) is None
            sub = db.session.get(Subscriber, new["subscriber_id"])
            assert apikeys.authenticate(new["api_key"]).id == sub.api_key_id
            assert webhooks._secrets(sub) == [new["secret"]]
        assert db.session.execute(select(func.count(ApiKey.id))).scalar_one() == 4


def test_the_receivers_secrets_are_never_written_in_production(app_factory, tmp_path):
    app = app_factory(ENV_NAME="production")
    with app.app_context(), pytest.raises(RuntimeError, match="development"):
        demo.write_receiver_file({"subscribers": []}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    result = app.test_cli_runner().invoke(
        args=["demo", "load", "--receiver", "http://127.0.0.1:5001"]
    )
    assert result.exit_code != 0 and "not loaded in production" in result.output
