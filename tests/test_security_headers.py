"""Headers and cookies every response carries: HSTS when Lethe is served over https (never on
plain http), and no "remember me" cookie anywhere — the dashboard never remembers anyone, and
anonymous pages must not set (or clear) one."""

import time

import pyotp
import pytest

from config import ConfigError
from tests.conftest import OFFICER_PASSWORD

HSTS = "max-age=31536000; includeSubDomains"
ANONYMOUS_PAGES = ("/", "/requests/new", "/records", "/dashboard/login")


def _responses(client):
    """A public page, a form, a dashboard page, a redirect, a 404, the API, a static file."""
    for path in (*ANONYMOUS_PAGES, "/dashboard/", "/no-such-page", "/api/v1/openapi.json"):
        yield path, client.get(path)
    yield "/healthz", client.get("/healthz")
    yield "/static/style.css", client.get("/static/style.css")


@pytest.mark.parametrize(
    "overrides",
    [
        {"PREFERRED_URL_SCHEME": "https"},
        {"PUBLIC_URL": "https://privacy.perkly.example"},  # the scheme comes from the public URL
    ],
)
def test_hsts_on_every_response_when_served_over_https(app_factory, overrides):
    app = app_factory(**overrides)
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    client = app.test_client()
    for path, resp in _responses(client):
        assert resp.headers.get("Strict-Transport-Security") == HSTS, path


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the tests' PUBLIC_URL is http://lethe.test
        {"PUBLIC_URL": "http://127.0.0.1:5000"},
        # An explicit setting wins over the public URL's scheme.
        {"PUBLIC_URL": "https://privacy.perkly.example", "PREFERRED_URL_SCHEME": "http"},
    ],
)
def test_no_hsts_on_plain_http(app_factory, overrides):
    app = app_factory(**overrides)
    assert app.config["PREFERRED_URL_SCHEME"] == "http"
    for path, resp in _responses(app.test_client()):
        assert "Strict-Transport-Security" not in resp.headers, path


def test_a_scheme_that_is_neither_http_nor_https_stops_start_up(app_factory):
    with pytest.raises(ConfigError, match="PREFERRED_URL_SCHEME"):
        app_factory(PREFERRED_URL_SCHEME="ftp")


def _remember_cookies(resp) -> list[str]:
    return [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("remember_token")]


@pytest.fixture
def csrf_app(app_factory):
    """CSRF on, as in production: the forms put a token in the session."""
    return app_factory(WTF_CSRF_ENABLED=True)


def test_anonymous_pages_set_no_remember_cookie(csrf_app):
    client = csrf_app.test_client()
    # Twice round: the first page puts a CSRF token in the session, which is what used to
    # make every later page clear a remember cookie nobody had.
    for _ in range(2):
        for path in ANONYMOUS_PAGES:
            resp = client.get(path)
            assert resp.status_code == 200, path
            assert _remember_cookies(resp) == [], path
    assert client.get_cookie("remember_token") is None


def test_anonymous_pages_do_not_rewrite_the_session(csrf_app):
    """Nothing changes for an anonymous visitor, so the session cookie is not sent again."""
    client = csrf_app.test_client()
    client.get("/requests/new")  # the session now holds a CSRF token
    for path in ANONYMOUS_PAGES:
        cookies = client.get(path).headers.getlist("Set-Cookie")
        assert not any(c.startswith("session=") for c in cookies), path


def test_sign_in_and_out_set_no_remember_cookie_and_still_work(app, login_as):
    officer = login_as("officer")  # signs in through the real form
    assert officer.get_cookie("remember_token") is None
    page = officer.get("/dashboard/")
    assert page.status_code == 200 and _remember_cookies(page) == []
    out = officer.post("/dashboard/logout", data={})
    assert out.status_code == 303 and _remember_cookies(out) == []
    gone = officer.get("/dashboard/")
    assert gone.status_code == 302 and _remember_cookies(gone) == []
    for path in ANONYMOUS_PAGES:  # signed out: anonymous again, with a session left over
        assert _remember_cookies(officer.get(path)) == [], path
    # And sign in again on the same client, with the next code.
    code = pyotp.TOTP(officer.totp_secret).at(time.time() + 30)  # the sign-in's code is spent
    again = officer.post(
        "/dashboard/login",
        data={"email": officer.email, "password": OFFICER_PASSWORD, "code": code},
    )
    assert again.status_code == 303 and _remember_cookies(again) == []
    assert officer.get("/dashboard/").status_code == 200


def test_a_forged_remember_cookie_signs_nobody_in(app, login_as):
    officer = login_as("admin")
    stranger = app.test_client()
    stranger.set_cookie("remember_token", f"{officer.officer_id}|forged")
    assert stranger.get("/dashboard/").status_code == 302


def test_a_session_replayed_from_another_browser_is_still_dropped(app, login_as):
    """Strong session protection still guards signed-in sessions."""
    officer = login_as("officer")
    thief = app.test_client()
    thief.set_cookie("session", officer.get_cookie("session").value)
    resp = thief.get("/dashboard/", headers={"User-Agent": "another browser"})
    assert resp.status_code == 302 and "/dashboard/login" in resp.headers["Location"]
    assert _remember_cookies(resp) == []
