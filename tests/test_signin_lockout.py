"""Per-account sign-in lockout: after N failed sign-ins in a row an account is locked for a
while, whatever address the attempts came from. While locked, even the right password and code
get the answer every failure gets (so nobody learns that an email exists, or is locked); a
successful sign-in resets the count; the lock ends by itself or when an admin lifts it; both
are audited without personal data."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from freezegun import freeze_time
from sqlalchemy import event, select

from rights.ledger import officers
from storage.db import db
from storage.models import AuditEvent, Officer
from tests.conftest import OFFICER_PASSWORD

T0 = datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)
EMAIL = "dana@perkly.example"


def _officer(app, email=EMAIL, role="officer"):
    with app.app_context():
        officer, uri = officers.create(
            email, name="Dana Okafor", role=role, password=OFFICER_PASSWORD, by="test"
        )
        db.session.commit()
        return officer.id, parse_qs(urlparse(uri).query)["secret"][0]


def _login(client, email, password, code):
    resp = client.post(
        "/dashboard/login", data={"email": email, "password": password, "code": code}
    )
    return resp.status_code, resp.get_data(as_text=True)


def _fail(app, email, times, code="123456"):
    return [_login(app.test_client(), email, "wrong password!", code) for _ in range(times)]


def _events(app, action):
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return db.session.execute(query).scalars().all()


def _row(app, officer_id):
    with app.app_context():
        row = db.session.get(Officer, officer_id)
        return row.failed_logins, row.locked_until


@pytest.fixture
def app3(app_factory):
    return app_factory(LOGIN_LOCKOUT_FAILURES=3, LOGIN_LOCKOUT_MINUTES=15)


def test_ten_failures_lock_the_account_and_the_right_credentials_get_the_same_answer(app):
    """The defaults: 10 failures in a row, locked for 15 minutes."""
    assert app.config["LOGIN_LOCKOUT_FAILURES"] == 10
    assert app.config["LOGIN_LOCKOUT_MINUTES"] == 15
    officer_id, secret = _officer(app)
    with freeze_time(T0):
        answers = _fail(app, EMAIL, 10)
        assert {status for status, _ in answers} == {401}
        wrong_password = answers[0]
        assert "did not match" in wrong_password[1]
        # The right password and a fresh, right code: the answer a wrong password gets.
        right = _login(app.test_client(), EMAIL, OFFICER_PASSWORD, pyotp.TOTP(secret).now())
        assert right == wrong_password
        assert _row(app, officer_id) == (0, T0 + timedelta(minutes=15))
    with app.app_context():
        assert db.session.get(Officer, officer_id).last_login_at is None
    (locked,) = _events(app, "officer.locked")
    assert locked.actor == "lethe" and locked.target == f"officer:{officer_id}"
    assert locked.subject_ref is None
    details = json.dumps(locked.details or {})
    assert "dana" not in details.lower() and "perkly" not in details
    assert not list(_events(app, "officer.login"))


def test_nine_failures_do_not_lock(app):
    officer_id, secret = _officer(app)
    with freeze_time(T0):
        _fail(app, EMAIL, 9)
        assert _row(app, officer_id) == (9, None)
        right = _login(app.test_client(), EMAIL, OFFICER_PASSWORD, pyotp.TOTP(secret).now())
        assert right[0] == 303


def test_a_successful_sign_in_resets_the_count(app3):
    officer_id, secret = _officer(app3)
    totp = pyotp.TOTP(secret)
    with freeze_time(T0) as frozen:
        for round_ in range(3):
            _fail(app3, EMAIL, 2)
            assert _row(app3, officer_id)[0] == 2
            status, _ = _login(app3.test_client(), EMAIL, OFFICER_PASSWORD, totp.now())
            assert status == 303, round_
            assert _row(app3, officer_id) == (0, None)
            frozen.tick(30)  # the next code
    assert not list(_events(app3, "officer.locked"))


def test_the_lock_ends_by_itself(app3):
    officer_id, secret = _officer(app3)
    totp = pyotp.TOTP(secret)
    with freeze_time(T0) as frozen:
        _fail(app3, EMAIL, 3)
        frozen.move_to(T0 + timedelta(minutes=10))
        # Failures while locked neither count nor make the lock longer.
        _fail(app3, EMAIL, 5)
        assert _row(app3, officer_id) == (0, T0 + timedelta(minutes=15))
        frozen.move_to(T0 + timedelta(minutes=14, seconds=50))
        assert _login(app3.test_client(), EMAIL, OFFICER_PASSWORD, totp.now())[0] == 401
        frozen.move_to(T0 + timedelta(minutes=15, seconds=30))
        assert _login(app3.test_client(), EMAIL, OFFICER_PASSWORD, totp.now())[0] == 303
        assert _row(app3, officer_id) == (0, None)
    assert len(list(_events(app3, "officer.locked"))) == 1


def test_after_the_lock_the_count_starts_again(app3):
    officer_id, _ = _officer(app3)
    with freeze_time(T0) as frozen:
        _fail(app3, EMAIL, 3)
        frozen.move_to(T0 + timedelta(minutes=16))
        _fail(app3, EMAIL, 2)
        assert _row(app3, officer_id) == (2, T0 + timedelta(minutes=15))  # over, not cleared
        _fail(app3, EMAIL, 1)
        assert _row(app3, officer_id) == (0, T0 + timedelta(minutes=31))
    assert len(list(_events(app3, "officer.locked"))) == 2


def test_unknown_emails_get_the_same_answer_and_lock_nothing(app3):
    officer_id, _ = _officer(app3)
    with freeze_time(T0):
        unknown = _fail(app3, "nobody@perkly.example", 5)
        assert {status for status, _ in unknown} == {401}
        assert len({body for _, body in unknown}) == 1  # the fifth answer is the first
        _fail(app3, EMAIL, 3)  # now locked
        locked = _login(app3.test_client(), EMAIL, "wrong password!", "123456")
    same = (unknown[0][0], unknown[0][1].replace("nobody@perkly.example", EMAIL))
    assert locked == same
    assert _row(app3, officer_id)[1] is not None
    assert len(list(_events(app3, "officer.locked"))) == 1  # the real account's, only
    assert len(list(_events(app3, "officer.login_failed"))) == 9


def _statements(app, email, password, code="123456"):
    """The SQL one sign-in attempt runs (the work it does, in the database)."""
    seen = []

    def count(conn, cursor, statement, *args):
        seen.append(statement.split()[0].upper())

    with app.app_context():
        engine = db.engines[None]
        event.listen(engine, "before_cursor_execute", count)
        try:
            officers.authenticate(email, password, code)
            db.session.rollback()
        finally:
            event.remove(engine, "before_cursor_execute", count)
    return seen


def test_an_unknown_email_does_the_same_database_work(app3):
    _officer(app3)
    with freeze_time(T0):
        known = _statements(app3, EMAIL, "wrong password!")
        unknown = _statements(app3, "nobody@perkly.example", "wrong password!")
    assert known == unknown
    assert known.count("UPDATE") >= 1  # the failure count, tried for unknown emails too


def test_an_admin_lifts_the_lock_from_the_officers_page(app3, login_as):
    with freeze_time(T0) as frozen:
        admin = login_as("admin")
        officer_id, secret = _officer(app3)
        _fail(app3, EMAIL, 3)
        frozen.move_to(T0 + timedelta(minutes=2))
        page = admin.get("/dashboard/officers").get_data(as_text=True)
        assert "Locked until 12:15 UTC" in page
        assert f"/dashboard/officers/{officer_id}/unlock" in page
        resp = admin.post(f"/dashboard/officers/{officer_id}/unlock", data={})
        assert resp.status_code == 303
        assert resp.headers["Location"].endswith("/dashboard/officers")
        assert _row(app3, officer_id) == (0, None)
        page = admin.get("/dashboard/officers").get_data(as_text=True)
        assert "Locked until" not in page and "is unlocked" in page
        right = _login(app3.test_client(), EMAIL, OFFICER_PASSWORD, pyotp.TOTP(secret).now())
        assert right[0] == 303
    (unlocked,) = _events(app3, "officer.unlocked")
    assert unlocked.actor == f"officer:{admin.officer_id}"
    assert unlocked.target == f"officer:{officer_id}"
    assert "dana" not in json.dumps(unlocked.details or {}).lower()


def test_unlocking_an_account_that_is_not_locked_changes_nothing(app3, login_as):
    admin = login_as("admin")
    officer_id, _ = _officer(app3)
    resp = admin.post(f"/dashboard/officers/{officer_id}/unlock", data={}, follow_redirects=True)
    assert resp.status_code == 200 and "is not locked" in resp.get_data(as_text=True)
    assert not list(_events(app3, "officer.unlocked"))
    assert admin.post("/dashboard/officers/999999/unlock", data={}).status_code == 404


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_only_admins_lift_a_lock(app3, login_as, role):
    with freeze_time(T0):
        someone = login_as(role)
        officer_id, _ = _officer(app3)
        _fail(app3, EMAIL, 3)
        if role == "auditor":  # reads the list, with the lock, but gets no button
            page = someone.get("/dashboard/officers").get_data(as_text=True)
            assert "Locked until 12:15 UTC" in page and "/unlock" not in page
        resp = someone.post(f"/dashboard/officers/{officer_id}/unlock", data={})
        assert resp.status_code == 403
        assert _row(app3, officer_id)[1] == T0 + timedelta(minutes=15)
        anonymous = app3.test_client().post(f"/dashboard/officers/{officer_id}/unlock")
        assert anonymous.status_code == 302
    assert not list(_events(app3, "officer.unlocked"))
    denied = list(_events(app3, "authz.denied"))
    assert [d.details["permission"] for d in denied][-1] == "officers.manage"


def test_unlocking_needs_the_csrf_token(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True, LOGIN_LOCKOUT_FAILURES=3)
    admin_id, admin_secret = _officer(app, "admin@perkly.example", role="admin")
    officer_id, _ = _officer(app)
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    data = {"email": "admin@perkly.example", "password": OFFICER_PASSWORD, "csrf_token": token}
    for _ in range(3):  # lock the officer's account (the form's token is good for all)
        failed = {**data, "email": EMAIL, "password": "nope", "code": "123456"}
        assert client.post("/dashboard/login", data=failed).status_code == 401
    signed_in = client.post(
        "/dashboard/login", data={**data, "code": pyotp.TOTP(admin_secret).now()}
    )
    assert signed_in.status_code == 303
    assert client.post(f"/dashboard/officers/{officer_id}/unlock").status_code == 400
    assert _row(app, officer_id)[1] is not None
    page = client.get("/dashboard/officers").get_data(as_text=True)  # a new session's token
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    ok = client.post(f"/dashboard/officers/{officer_id}/unlock", data={"csrf_token": token})
    assert ok.status_code == 303 and _row(app, officer_id) == (0, None)


def test_lockout_can_be_turned_off(app_factory):
    app = app_factory(LOGIN_LOCKOUT_FAILURES=0)
    officer_id, secret = _officer(app)
    with freeze_time(T0):
        _fail(app, EMAIL, 12)
        assert _row(app, officer_id)[1] is None
        right = _login(app.test_client(), EMAIL, OFFICER_PASSWORD, pyotp.TOTP(secret).now())
        assert right[0] == 303
