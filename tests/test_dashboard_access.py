"""Who may open what on the dashboard: every route × {anonymous, officer, admin, auditor},
per-object rules (another officer's request, one's own request), sign-in with a second factor,
session expiry, rate limiting, CSRF, and every refusal logged."""

import re
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from freezegun import freeze_time
from sqlalchemy import select

from rights.contest import incidents
from rights.delivery import outbox
from rights.erasure import retention
from rights.ledger import apikeys, officers
from rights.lifecycle import requests
from rights.recipients import webhooks
from storage import vault
from storage.db import db
from storage.models import AuditEvent, EvidenceAttachment, Officer, RightsRequest, Subscriber
from tests import factories
from tests.conftest import OFFICER_PASSWORD

ROLES = ("anonymous", "officer", "admin", "auditor")
EVERYONE = {"officer", "admin", "auditor"}
DECIDERS = {"officer", "admin"}
ADMIN = {"admin"}
SETTINGS = {"admin", "auditor"}

# (method, url template, who is allowed). Every dashboard route must be listed here: a test
# compares this table with the app's URL map, so a new route cannot skip the matrix.
ROUTES = [
    ("GET", "/dashboard/", EVERYONE, 200),
    ("GET", "/dashboard/requests", EVERYONE, 200),
    ("POST", "/dashboard/requests/search", EVERYONE, 422),  # no email given
    ("GET", "/dashboard/requests.csv", EVERYONE, 200),
    ("GET", "/dashboard/requests/{rid}", EVERYONE, 200),
    ("GET", "/dashboard/requests/{rid}/records", EVERYONE, 200),
    ("GET", "/dashboard/requests/{rid}/evidence/{att}", EVERYONE, 200),
    ("GET", "/dashboard/requests/{rid}/extend", DECIDERS, 200),
    ("POST", "/dashboard/requests/{rid}/ask", DECIDERS, 422),  # no question given
    ("POST", "/dashboard/requests/{rid}/assign?officer={me}", DECIDERS, 303),
    # Art. 19 by hand: an empty form is refused; nothing recorded yet to withdraw.
    ("POST", "/dashboard/requests/{rid}/told/brand", DECIDERS, 422),
    ("POST", "/dashboard/requests/{rid}/told/brand/withdraw", DECIDERS, 404),
    ("GET", "/dashboard/incidents", EVERYONE, 200),
    ("GET", "/dashboard/incidents/new", DECIDERS, 200),
    ("POST", "/dashboard/incidents/new", DECIDERS, 422),  # empty form
    ("GET", "/dashboard/incidents/{inc}", EVERYONE, 200),
    ("GET", "/dashboard/incidents/{inc}/correct", DECIDERS, 200),  # the confirmation step
    ("POST", "/dashboard/incidents/{inc}/correct", DECIDERS, 303),
    ("POST", "/dashboard/incidents/{inc}/apology", DECIDERS, 422),  # empty form
    ("POST", "/dashboard/incidents/{inc}/root-cause", DECIDERS, 422),  # empty form
    ("GET", "/dashboard/incidents/{inc}/notify", DECIDERS, 200),  # preview and confirm
    ("POST", "/dashboard/incidents/{inc}/notify", DECIDERS, 303),
    ("GET", "/dashboard/audit", EVERYONE, 200),
    ("POST", "/dashboard/audit/verify", EVERYONE, 303),
    ("GET", "/dashboard/officers", SETTINGS, 200),
    ("POST", "/dashboard/officers", ADMIN, 422),  # empty form
    ("POST", "/dashboard/officers/{other}/active", ADMIN, 303),
    ("POST", "/dashboard/officers/{other}/unlock", ADMIN, 303),  # not locked: says so
    ("GET", "/dashboard/api-keys", SETTINGS, 200),
    ("POST", "/dashboard/api-keys", ADMIN, 422),  # empty form
    ("POST", "/dashboard/api-keys/{key}/revoke", ADMIN, 303),
    ("GET", "/dashboard/signing-keys", SETTINGS, 200),
    ("POST", "/dashboard/signing-keys/rotate", ADMIN, 303),
    ("GET", "/dashboard/subscribers", SETTINGS, 200),
    ("POST", "/dashboard/subscribers", ADMIN, 422),  # empty form
    ("GET", "/dashboard/subscribers/{sub}", SETTINGS, 200),
    ("GET", "/dashboard/deliveries/failed", SETTINGS, 200),
    ("POST", "/dashboard/deliveries/{dlv}/redeliver", ADMIN, 303),
    ("POST", "/dashboard/subscribers/{sub}/rotate", ADMIN, 200),  # the new secret, once
    ("POST", "/dashboard/subscribers/{sub}/active?active=0", ADMIN, 303),
    ("POST", "/dashboard/subscribers/{sub}/recipient?recipient=brand", ADMIN, 303),
    ("GET", "/dashboard/agents", SETTINGS, 200),
    ("POST", "/dashboard/agents", ADMIN, 422),  # empty form
    ("POST", "/dashboard/agents/NOBODY/remove", ADMIN, 404),  # no such agent
    ("GET", "/dashboard/retention", EVERYONE, 200),
    ("POST", "/dashboard/retention/holds", DECIDERS, 422),  # empty form
    ("POST", "/dashboard/retention/holds/{hold}/release", DECIDERS, 303),
    ("GET", "/dashboard/record-of-processing", EVERYONE, 200),
    ("GET", "/dashboard/record-of-processing.json", EVERYONE, 200),
    ("GET", "/dashboard/record-of-processing.csv", EVERYONE, 200),
]
PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.logout"}


@pytest.fixture
def world(app):
    """An open request with an attachment, an API key and a second officer to act on."""
    with app.app_context():
        factories.member(1)
        db.session.commit()
        req = requests.file(
            type="restriction", member_id="m-1", channel="api", verified=True, actor="test"
        )
        att = EvidenceAttachment(
            request_id=req.id,
            subject_id=req.subject_id,
            media_type="image/png",
            content_enc=vault.encrypt(
                req.subject_id, "evidence_attachments.content_enc", b"\x89PNG picture"
            ),
        )
        db.session.add(att)
        factories.award(1, 1, status="received")
        incident = incidents.open_incident(
            title="t", root_cause="", record_filter={"perk": "p-phone"}, actor="t", request_id=None
        )
        subscriber = Subscriber(name="Nova", url="https://hooks.example/x", events=["x"])
        db.session.add(subscriber)
        db.session.flush()
        subscriber.secret_enc = vault.seal(f"webhook-secret:{subscriber.id}", b"whsec_x")
        event = outbox.enqueue_event("x", request_id=req.id, body={"type": "x"})
        (delivery,) = webhooks.fan_out(event, None)
        delivery.status = "dead"
        hold = retention.place_hold(
            scope="category", target="notices", reason="inquiry", ends_at=None, actor="t"
        )
        key, _ = apikeys.create("platform", ["requests:read"], actor="test")
        other, _ = officers.create(
            "other@perkly.example", name="Other", role="officer", password=OFFICER_PASSWORD, by="t"
        )
        db.session.commit()
        return {
            "rid": req.id,
            "att": att.id,
            "key": key.id,
            "other": other.id,
            "inc": incident.id,
            "sub": subscriber.id,
            "dlv": delivery.id,
            "hold": hold.id,
        }


def _client(app, login_as, role):
    return app.test_client() if role == "anonymous" else login_as(role)


def _call(client, method, url):
    # A form value given in the table's query string is posted as the form.
    url, _, query = url.partition("?")
    data = dict(pair.split("=") for pair in query.split("&")) if query else {}
    resp = client.open(url, method=method, data=data)
    resp.get_data()
    resp.close()
    return resp


def test_every_dashboard_route_is_in_the_matrix(app):
    listed = [(m, re.sub(r"\{[^}]+\}", "1", u.split("?")[0])) for m, u, *_ in ROUTES]
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        pattern = re.compile(re.sub(r"<[^>]+>", "[^/]+", rule.rule) + "$")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert any(m == method and pattern.match(u) for m, u in listed), (
                f"{method} {rule.rule} is not in the permission matrix"
            )


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(app, login_as, world, role):
    client = _client(app, login_as, role)
    wrong = []
    for method, template, allowed, expected in ROUTES:
        url = template.format(**world, me=getattr(client, "officer_id", ""))
        resp = _call(client, method, url)
        if role == "anonymous":
            ok = resp.status_code == 302 and "/dashboard/login" in resp.headers["Location"]
        elif role in allowed:
            ok = resp.status_code == expected
        else:
            ok = resp.status_code == 403
        if not ok:
            wrong.append(f"{method} {url}: {resp.status_code}")
    assert not wrong, f"{role}: " + "; ".join(wrong)
    if role not in ("anonymous", "admin"):
        with app.app_context():
            denied = db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "authz.denied")
            ).scalars()
            refused = sum(1 for _, _, allowed, _ in ROUTES if role not in allowed)
            assert len(list(denied)) == refused  # every refusal is in the audit trail


def _assign(app, rid, officer_id):
    with app.app_context():
        requests.assign(requests.get(rid), officer_id, actor="test")
        db.session.commit()


def test_an_officer_cannot_act_on_another_officers_request(app, login_as, world):
    holder, intruder, admin = login_as("officer"), login_as("officer"), login_as("admin")
    _assign(app, world["rid"], holder.officer_id)
    rid = world["rid"]
    for path in ("extend", "refuse", "ask", "cancel", "approve"):
        assert intruder.get(f"/dashboard/requests/{rid}/{path}").status_code == 403
    resp = intruder.post(f"/dashboard/requests/{rid}/refuse", data={"reason": "I say so"})
    assert resp.status_code == 403
    take = intruder.post(f"/dashboard/requests/{rid}/assign", data={"officer": intruder.officer_id})
    assert take.status_code == 403
    page = intruder.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert "Another officer holds this request" in page and "Refuse" not in page
    assert holder.get(f"/dashboard/requests/{rid}/refuse").status_code == 200
    assert admin.get(f"/dashboard/requests/{rid}/refuse").status_code == 200
    # An admin reassigns; then the other officer may act and the first may not.
    moved = admin.post(f"/dashboard/requests/{rid}/assign", data={"officer": intruder.officer_id})
    assert moved.status_code == 303
    assert intruder.get(f"/dashboard/requests/{rid}/extend").status_code == 200
    assert holder.get(f"/dashboard/requests/{rid}/extend").status_code == 403
    with app.app_context():
        assert requests.get(rid).status == "open"
        denials = db.session.execute(
            select(AuditEvent.actor, AuditEvent.target).where(AuditEvent.action == "authz.denied")
        ).all()
        assert (f"officer:{intruder.officer_id}", f"request:{rid}") in denials


def test_an_officer_never_decides_their_own_request(app, login_as):
    me = login_as("officer", email="dana@perkly.example")
    with app.app_context():
        req = requests.file(type="erasure", email="Dana@perkly.example", channel="web", actor="s")
        db.session.commit()
        rid = req.id
    resp = me.get(f"/dashboard/requests/{rid}/verify")
    assert resp.status_code == 403
    assert "about you" in resp.get_data(as_text=True)


def test_an_officer_takes_an_unassigned_request_and_acting_takes_it_too(app, login_as, world):
    first, second = login_as("officer"), login_as("officer")
    rid = world["rid"]
    resp = first.post(f"/dashboard/requests/{rid}/assign", data={"officer": second.officer_id})
    assert resp.status_code == 403  # only admins give requests to others
    ask = first.post(f"/dashboard/requests/{rid}/ask", data={"question": "Which records?"})
    assert ask.status_code == 303
    with app.app_context():
        assert requests.get(rid).assignee_id == first.officer_id


def _login(client, email, password, code):
    return client.post(
        "/dashboard/login", data={"email": email, "password": password, "code": code}
    )


def test_sign_in_needs_the_second_factor_and_a_code_works_once(app, login_as):
    with freeze_time("2026-11-25T12:00:10Z") as frozen:
        officer = login_as("officer")  # signs in with the code of 12:00:00-12:00:29
        secret, email = officer.totp_secret, officer.email
        totp = pyotp.TOTP(secret)
        fresh = app.test_client()
        assert _login(fresh, email, OFFICER_PASSWORD, "").status_code == 422
        assert _login(fresh, email, OFFICER_PASSWORD, "12345678").status_code == 401
        assert fresh.get("/dashboard/").status_code == 302
        # The code the fixture signed in with is spent: replaying it fails.
        replay = _login(fresh, email, OFFICER_PASSWORD, totp.now())
        assert replay.status_code == 401 and "did not match" in replay.get_data(as_text=True)
        # The next step's code works (±1 step of drift), once.
        frozen.move_to("2026-11-25T12:00:40Z")
        assert _login(fresh, email, OFFICER_PASSWORD, totp.now()).status_code == 303
        assert fresh.get("/dashboard/").status_code == 200
        assert _login(app.test_client(), email, OFFICER_PASSWORD, totp.now()).status_code == 401
        # A wrong password with a right, unused code: the same answer as everything else.
        frozen.move_to("2026-11-25T12:01:10Z")
        unused = totp.now()
        wrong = _login(app.test_client(), email, "not the password", unused)
        assert wrong.status_code == 401 and "did not match" in wrong.get_data(as_text=True)
        assert _login(app.test_client(), email, OFFICER_PASSWORD, unused).status_code == 303


def test_a_malformed_code_is_a_form_error_whoever_the_account(app, login_as):
    known = login_as("officer").email
    answers = []
    for email in (known, "nobody@perkly.example"):
        for code in ("éééééé", "１２３４５６", "12 34 56", "1" * 40):
            resp = _login(app.test_client(), email, OFFICER_PASSWORD, code)
            answers.append(resp.status_code)
    assert set(answers) == {422}


def test_unknown_email_gets_the_same_answer(app, login_as):
    known = login_as("officer").email
    code = "123456"
    answers = []
    for email, password in ((known, "wrong password"), ("nobody@perkly.example", "x" * 12)):
        resp = _login(app.test_client(), email, password, code)
        answers.append((resp.status_code, resp.get_data(as_text=True).replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and "did not match" in answers[0][1]
    assert "x" * 12 not in answers[1][1]  # the password is never sent back


def test_sessions_expire_when_idle_and_after_a_shift(app, login_as):
    with freeze_time("2026-11-25T09:00:00Z", tick=True) as frozen:
        officer = login_as("officer")
        assert officer.get("/dashboard/").status_code == 200
        frozen.move_to("2026-11-25T09:29:00Z")
        assert officer.get("/dashboard/").status_code == 200  # activity keeps it alive
        frozen.move_to("2026-11-25T10:00:00Z")
        resp = officer.get("/dashboard/")
        assert resp.status_code == 302 and "/dashboard/login" in resp.headers["Location"]
        assert officer.get("/dashboard/").status_code == 302  # signed out for good

    with freeze_time("2026-11-26T08:00:00Z", tick=True) as frozen:
        busy = login_as("officer")
        for minute in range(0, 10 * 60, 20):  # active all day, never idle
            frozen.move_to(f"2026-11-26T{8 + minute // 60:02d}:{minute % 60:02d}:00Z")
            assert busy.get("/dashboard/").status_code == 200, minute
        frozen.move_to("2026-11-26T18:01:00Z")
        assert busy.get("/dashboard/").status_code == 302  # the absolute limit
    with app.app_context():
        expired = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "officer.session_expired")
        ).all()
        assert len(expired) == 2


def test_a_deactivated_officer_is_signed_out_at_once(app, login_as):
    admin, officer = login_as("admin"), login_as("officer")
    assert officer.get("/dashboard/").status_code == 200
    resp = admin.post(f"/dashboard/officers/{officer.officer_id}/active", data={})
    assert resp.status_code == 303
    assert officer.get("/dashboard/").status_code == 302
    # Nobody deactivates themselves.
    admin.post(f"/dashboard/officers/{admin.officer_id}/active", data={})
    with app.app_context():
        assert db.session.get(Officer, admin.officer_id).active is True


def test_sign_out_ends_the_session(app, login_as):
    officer = login_as("auditor")
    assert officer.post("/dashboard/logout", data={}).status_code == 303
    assert officer.get("/dashboard/").status_code == 302


def test_next_only_leads_inside_the_dashboard(app, login_as):
    officer = login_as("officer")
    secret, email = officer.totp_secret, officer.email
    code = pyotp.TOTP(secret).at(time.time() + 30)
    resp = app.test_client().post(
        "/dashboard/login?next=https://evil.example/dashboard",
        data={"email": email, "password": OFFICER_PASSWORD, "code": code},
    )
    assert resp.headers["Location"] == "/dashboard/"
    anonymous = app.test_client().get("/dashboard/requests?type=erasure")
    assert "next=" in anonymous.headers["Location"]


def test_sign_in_is_rate_limited(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    codes = [
        _login(client, "x@perkly.example", "wrong password", "123456").status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_dashboard_forms_need_the_csrf_token(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        officer, uri = officers.create(
            "csrf@perkly.example", name="C", role="admin", password=OFFICER_PASSWORD, by="t"
        )
        db.session.commit()
    client = app.test_client()
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    no_token = _login(client, "csrf@perkly.example", OFFICER_PASSWORD, pyotp.TOTP(secret).now())
    assert no_token.status_code == 400  # refused before the credentials are even read
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    resp = client.post(
        "/dashboard/login",
        data={
            "csrf_token": token,
            "email": "csrf@perkly.example",
            "password": OFFICER_PASSWORD,
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert resp.status_code == 303
    rotate = client.post("/dashboard/signing-keys/rotate", data={})
    assert rotate.status_code == 400
    with app.app_context():
        assert not db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "signing_key.rotated")
        ).first()


def test_dashboard_pages_carry_the_security_headers(app, login_as, world):
    officer = login_as("officer")
    resp = officer.get(f"/dashboard/requests/{world['rid']}")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in resp.get_data(as_text=True)


def test_auditor_reads_everything_and_changes_nothing(app, login_as, world):
    auditor = login_as("auditor")
    rid = world["rid"]
    for url in (f"/dashboard/requests/{rid}", "/dashboard/officers", "/dashboard/api-keys"):
        page = auditor.get(url).get_data(as_text=True)
        assert "Deactivate" not in page and "Revoke" not in page and "Refuse" not in page
    with app.app_context():
        before = db.session.execute(select(RightsRequest.status)).scalars().all()
    for path in ("refuse", "extend", "cancel"):
        auditor.post(f"/dashboard/requests/{rid}/{path}", data={"reason": "x", "months": "1"})
    with app.app_context():
        assert db.session.execute(select(RightsRequest.status)).scalars().all() == before


def test_sign_out_ends_copies_of_the_session_too(app, login_as):
    officer = login_as("officer")
    thief = app.test_client()
    cookie = officer.get_cookie("session")
    thief.set_cookie("session", cookie.value)
    assert thief.get("/dashboard/").status_code == 200
    assert officer.post("/dashboard/logout", data={}).status_code == 303
    assert thief.get("/dashboard/").status_code == 302


def test_bad_ids_and_page_numbers_are_not_errors(app, login_as, world):
    admin = login_as("admin")
    huge = "9" * 25
    assert admin.post(f"/dashboard/officers/{huge}/active", data={}).status_code == 404
    assert admin.post(f"/dashboard/api-keys/{huge}/revoke", data={}).status_code == 404
    rid = world["rid"]
    assert admin.get(f"/dashboard/requests/{rid}/evidence/{huge}").status_code == 404
    assert admin.get("/dashboard/requests/not-a-uuid").status_code == 404
    assert admin.get(f"/dashboard/requests/{rid}/nonsense").status_code == 404
    assert admin.get(f"/dashboard/requests?page={huge}").status_code == 422
    assert admin.get("/dashboard/requests?page=-1").status_code == 422
    assert admin.get("/dashboard/audit?page=" + huge).status_code == 200
    odd = admin.get("/dashboard/requests.csv?status=bogus&endpoint=x&_method=DELETE&_scheme=x")
    assert odd.status_code == 303 and "endpoint" not in odd.headers["Location"]


def test_the_demo_is_never_loaded_beside_real_officers(app, runner):
    with app.app_context():
        officers.create(
            "real@perkly.example", name="Real", role="admin", password=OFFICER_PASSWORD, by="t"
        )
        db.session.commit()
    result = runner.invoke(args=["demo", "load", "--members", "2"])
    assert result.exit_code != 0 and "real officer accounts" in result.output
