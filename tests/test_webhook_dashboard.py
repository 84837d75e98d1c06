"""Webhooks on the dashboard: admins add subscribers (secret and key shown once, internal URLs
refused with a form error), rotate secrets, disable and enable (stopped deliveries resume), see
each subscriber's and each request's deliveries by state, and redeliver failed ones."""

import re

from sqlalchemy import select

from rights.delivery import outbox
from rights.lifecycle import requests
from rights.recipients import webhooks
from storage.db import db
from storage.models import AuditEvent, Delivery, Subscriber
from tests import factories

PUBLIC_URL = "https://93.184.216.34/hooks"  # a global address: no DNS needed


def _add(admin, **form):
    data = {"name": "Nova brand", "url": PUBLIC_URL, "events": ["subject.objected"], **form}
    return admin.post("/dashboard/subscribers", data=data)


def _event(app, n=1, status=None):
    """Member ``n``, a request and one event for every active subscriber, its deliveries left
    in ``status`` (if given); returns the request id."""
    with app.app_context():
        factories.member(n)
        req = requests.file(
            type="restriction", member_id=f"m-{n}", channel="api", verified=True, actor="t"
        )
        event = outbox.enqueue_event("subject.erased", request_id=req.id, body={"type": "x"})
        for d in webhooks.fan_out(event, None):
            d.status = status or d.status
        db.session.commit()
        return req.id


def test_an_admin_adds_a_subscriber_and_sees_its_secret_once(app, login_as):
    admin = login_as("admin")
    page = _add(admin).get_data(as_text=True)
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", page).group(0)
    assert re.search(r"lethe_[A-Za-z0-9_]+", page)
    with app.app_context():
        sub = db.session.execute(select(Subscriber)).scalar_one()
        assert sub.events == sorted([*webhooks.ALWAYS, "subject.objected"])
        assert secret.encode() not in sub.secret_enc
    listing = admin.get("/dashboard/subscribers").get_data(as_text=True)
    assert "Nova brand" in listing and secret not in listing
    assert secret not in admin.get(f"/dashboard/subscribers/{sub.id}").get_data(as_text=True)


def test_bad_subscribers_get_the_form_back_saying_what_to_fix(app, login_as):
    admin = login_as("admin")
    for form, field_text in (
        ({"url": "http://10.0.0.5/hooks"}, "private address refused"),
        ({"url": "ftp://example.com/x"}, "an http or https URL"),
        ({"url": "https://user:pw@93.184.216.34/h"}, "no user:password@"),
        ({"url": "https://93.184.216.34:99999/h"}, "bad port"),
        ({"url": "https://93.184.216.34/a hook"}, "no spaces"),
        ({"events": ["subject.nope"]}, "is not a valid choice"),
        ({"name": ""}, "This field is required."),
    ):
        resp = _add(admin, **form)
        assert resp.status_code == 422, form
        assert field_text in resp.get_data(as_text=True), form
    with app.app_context():
        assert db.session.execute(select(Subscriber)).first() is None


def test_rotating_keeps_the_old_secret_signing_for_a_while(app, login_as):
    admin = login_as("admin")
    first = re.search(r"whsec_[A-Za-z0-9+/=]+", _add(admin).get_data(as_text=True)).group(0)
    page = admin.post("/dashboard/subscribers/1/rotate").get_data(as_text=True)
    second = re.search(r"whsec_[A-Za-z0-9+/=]+", page).group(0)
    assert second != first
    with app.app_context():
        sub = db.session.get(Subscriber, 1)
        assert sorted(webhooks._secrets(sub)) == sorted([first, second])
        assert db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "subscriber.secret_rotated")
        ).first()


def test_disabling_stops_and_enabling_resumes_the_stopped_deliveries(app, login_as):
    admin = login_as("admin")
    _add(admin)
    assert admin.post("/dashboard/subscribers/1/active").status_code == 400  # which state?
    resp = admin.post("/dashboard/subscribers/1/active", data={"active": "0"})
    assert resp.status_code == 303
    # A second click (or a stale page) asks for the state it is in: nothing changes.
    assert admin.post("/dashboard/subscribers/1/active", data={"active": "0"}).status_code == 303
    with app.app_context():
        assert db.session.get(Subscriber, 1).active is False
    # An event while it is disabled still makes its delivery, stopped: Art. 19 still applies.
    _event(app, 1)
    with app.app_context():
        (delivery,) = db.session.execute(select(Delivery)).scalars().all()
        assert delivery.status == "disabled"
    page = admin.get("/dashboard/deliveries/failed").get_data(as_text=True)
    assert "subscription disabled" in page
    admin.post("/dashboard/subscribers/1/active", data={"active": "1"})
    with app.app_context():
        (delivery,) = db.session.execute(select(Delivery)).scalars().all()
        assert delivery.status == "pending" and delivery.attempts == 0
        assert db.session.get(Subscriber, 1).active is True


def test_failed_deliveries_are_listed_and_redelivered_with_the_same_id(app, login_as):
    admin = login_as("admin")
    _add(admin)
    rid = _event(app, status="dead")
    with app.app_context():
        delivery = db.session.execute(select(Delivery)).scalar_one()
        did = delivery.id
    page = admin.get("/dashboard/deliveries/failed").get_data(as_text=True)
    assert did in page and "Redeliver" in page
    request_page = admin.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert "Recipients told" in request_page and did in request_page and "failed" in request_page
    sub_page = admin.get("/dashboard/subscribers/1?state=failed").get_data(as_text=True)
    assert did in sub_page
    assert did not in admin.get("/dashboard/subscribers/1?state=confirmed").get_data(as_text=True)
    assert admin.get("/dashboard/subscribers/1?state=bogus").status_code == 422
    assert admin.get("/dashboard/subscribers/1?page=0").status_code == 422
    assert admin.post(f"/dashboard/deliveries/{did}/redeliver").status_code == 303
    with app.app_context():
        again = db.session.get(Delivery, did)
        assert again.status == "pending" and again.attempts == 0
    # Only failed ones: a second click says so, and an unknown id is a 404.
    follow = admin.post(f"/dashboard/deliveries/{did}/redeliver", follow_redirects=True)
    assert "Only failed deliveries are redelivered." in follow.get_data(as_text=True)
    assert admin.post("/dashboard/deliveries/msg_nope/redeliver").status_code == 404
    assert admin.get("/dashboard/subscribers/999").status_code == 404


def test_an_auditor_reads_webhooks_but_changes_nothing(app, login_as):
    admin = login_as("admin")
    _add(admin, url=PUBLIC_URL + "?token=s3cret")
    assert "s3cret" in admin.get("/dashboard/subscribers/1").get_data(as_text=True)
    auditor = login_as("auditor")
    page = auditor.get("/dashboard/subscribers/1").get_data(as_text=True)
    assert "Nova brand" in page and "Rotate" not in page and "Disable" not in page
    # Receivers put tokens in query strings: only admins see them.
    assert "s3cret" not in page and "s3cret" not in auditor.get("/dashboard/subscribers").get_data(
        as_text=True
    )
    assert auditor.post("/dashboard/subscribers/1/rotate").status_code == 403


def test_a_subscriber_says_which_recipient_of_the_data_map_it_speaks_for(app, login_as):
    """The form offers the data map's recipients by name; the choice is stored, shown, can be
    changed or cleared (audited each time), and a key the map does not declare is refused."""
    admin = login_as("admin")
    listing = admin.get("/dashboard/subscribers").get_data(as_text=True)
    assert "Speaks for (recipient in the data map)" in listing
    assert "Disclosure-list consumers (review sites, ad networks)" in listing
    bad = _add(admin, recipient="nova")
    assert bad.status_code == 422 and "Not a valid choice" in bad.get_data(as_text=True)
    assert _add(admin, recipient="brand").status_code == 200
    with app.app_context():
        sub = db.session.execute(select(Subscriber)).scalar_one()
        assert sub.recipient == "brand"
    page = admin.get(f"/dashboard/subscribers/{sub.id}").get_data(as_text=True)
    assert "The brand giving the perk" in page
    url = f"/dashboard/subscribers/{sub.id}/recipient"
    assert admin.post(url, data={"recipient": "list_consumers"}).status_code == 303
    assert admin.post(url, data={"recipient": "nova"}).status_code == 422
    assert admin.post(url, data={"recipient": ""}).status_code == 303  # undone: none
    with app.app_context():
        assert db.session.get(Subscriber, sub.id).recipient is None
        changes = db.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "subscriber.recipient_set")
        ).scalars()
        assert [(d["was"], d["recipient"]) for d in changes] == [
            ("brand", "list_consumers"),
            ("list_consumers", None),
        ]
    auditor = login_as("auditor")
    assert auditor.post(url, data={"recipient": "brand"}).status_code == 403
