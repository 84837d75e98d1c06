"""What every API call costs (issue 17): its key read in one query, its last use written at
most once a minute per key and never inside the call's own transaction, and no session —
no cookie read, none set."""

import time
import urllib.request
from datetime import timedelta

import pytest
from flask import has_request_context, session
from freezegun import freeze_time
from sqlalchemy import event

from rights.ledger import apikeys
from storage.clock import utcnow
from storage.db import db
from storage.models import ApiKey
from tests.processes import serve

LIST = "/api/v1/requests"
AWARD = {
    "award_id": "aw-1",
    "member_id": "m-1",
    "perk_id": "p-phone",
    "brand_id": "b-nova",
    "status": "offered",
    "source": "test",
    "actor": "test",
}


class Statements:
    """The SQL statements run on the main database, with whether a request was in progress."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _log(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append((" ".join(statement.split()), has_request_context()))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._log)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._log)

    def on_api_keys(self, verb: str) -> list[tuple[str, bool]]:
        return [(s, during) for s, during in self.seen if s.startswith(verb) and "api_keys" in s]


def _call(client, headers, path=LIST):
    """One API call, its answer read and closed, as a server does (what runs after the
    answer runs then)."""
    resp = client.get(path, headers=headers)
    resp.get_data()
    resp.close()
    return resp


def _last_used(app):
    with app.app_context():
        return db.session.execute(db.select(ApiKey.last_used_at)).scalar_one()


def test_a_keys_last_use_is_written_once_a_minute_after_the_answer(app, client, api_key):
    start = utcnow().replace(microsecond=0) + timedelta(days=1)
    with app.app_context():
        engine = db.engine
    with Statements(engine) as sql, freeze_time(start) as clock:
        for _ in range(20):
            assert _call(client, api_key).status_code == 200
            clock.tick(timedelta(seconds=2))  # 20 calls within 40 s
        first = sql.on_api_keys("UPDATE")
        assert _last_used(app) == start

        clock.move_to(start + timedelta(seconds=61))
        assert _call(client, api_key).status_code == 200
        assert _call(client, api_key).status_code == 200
        assert _last_used(app) == start + timedelta(seconds=61)
        updates = sql.on_api_keys("UPDATE")
        reads = sql.on_api_keys("SELECT")
    assert len(first) == 1 and len(updates) == 2, updates
    # After the answer, outside the request and so outside its transaction.
    assert not any(during for _, during in updates)
    assert len(reads) == 22 + 2  # one per call, and the two _last_used checks


def test_a_real_server_records_the_use_after_answering(app, api_key):
    """gunicorn closes each answer it sends, which runs what waits for it: the key's first
    use is in the database moments after the answer."""
    with serve(app, workers=1) as base:
        request = urllib.request.Request(base + LIST, headers=api_key)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - our server
            assert resp.status == 200
            assert resp.headers.get("Set-Cookie") is None
        deadline = time.monotonic() + 10
        while _last_used(app) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _last_used(app) is not None


def test_requests_of_one_key_that_all_find_it_due_write_it_once(app, api_key):
    """The UPDATE is conditional: calls that each saw the key due (say, several in the same
    second on several threads) record the use once."""
    with app.app_context():
        key = db.session.execute(db.select(ApiKey)).scalar_one()
        now = utcnow()
        pending = [apikeys.use_to_record(key, now + timedelta(seconds=i)) for i in range(5)]
        db.session.rollback()
        assert all(pending)
        with Statements(db.engine) as sql:
            for record in pending:
                record()
        rows = [s for s, _ in sql.seen if s.startswith("UPDATE")]
        assert len(rows) == 5
        assert db.session.execute(db.select(ApiKey.last_used_at)).scalar_one() == now
        db.session.expire_all()
        assert apikeys.use_to_record(key, now + timedelta(seconds=59)) is None


def test_the_key_is_read_in_one_query_and_its_row_used_by_the_view(app, client, api_key):
    _call(client, api_key)  # its first use is recorded; what follows is every other call
    with app.app_context():
        engine = db.engine
    with Statements(engine) as sql:
        assert _call(client, api_key).status_code == 200
        assert (
            client.post(
                "/api/v1/members",
                json={
                    "member_id": "m-1",
                    "email": "a@example.org",
                    "source": "test",
                    "actor": "test",
                },
                headers=api_key,
            ).status_code
            == 201
        )
    reads = sql.on_api_keys("SELECT")
    assert len(reads) == 2, reads  # one per call: the row the views use (scopes, id, name)
    assert all("api_keys.prefix = " in s for s, _ in reads)
    assert not sql.on_api_keys("UPDATE")


def test_a_wrong_or_revoked_key_is_refused_and_records_nothing(app, client, api_key):
    with app.app_context():
        key = db.session.execute(db.select(ApiKey)).scalar_one()
        prefix = key.prefix
        engine = db.engine
    wrong = {"Authorization": f"Bearer lethe_{prefix}_{'x' * 43}"}
    unknown = {"Authorization": f"Bearer lethe_000000000000_{'x' * 43}"}
    with Statements(engine) as sql:
        assert _call(client, wrong).status_code == 401
        assert _call(client, unknown).status_code == 401
    assert len(sql.on_api_keys("SELECT")) == 2 and not sql.on_api_keys("UPDATE")
    with app.app_context():
        apikeys.revoke(key.id, actor="test")
        db.session.commit()
    assert _call(client, api_key).status_code == 401
    assert _last_used(app) is None


# --- no session on the API ---------------------------------------------------------------


def _browser_session(app, client) -> None:
    """The cookie of a browser that has a permanent session (a request page's grant): one
    that Flask signs and sets again on every answer that opens it."""
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"_permanent": True, "grants": {"r-1": "2099-01-01T00:00:00+00:00"}}
    )
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)


@pytest.mark.parametrize(
    "method, path, body, keyed",
    [
        ("get", LIST, None, True),
        ("post", "/api/v1/perk-awards", AWARD, True),  # unknown member: an error answer
        ("post", "/api/v1/members", {**AWARD, "email": "a@example.org"}, True),
        ("get", LIST, None, False),  # 401
        ("post", "/api/v1/statements", {"record_key": "0000-0000"}, False),
        ("get", "/api/v1/openapi.json", None, False),
        ("get", "/api/v1/no-such-thing", None, False),
    ],
)
def test_api_answers_set_no_cookie_and_do_not_vary_on_one(
    app, client, api_key, method, path, body, keyed
):
    _browser_session(app, client)
    resp = getattr(client, method)(path, json=body, headers=api_key if keyed else {})
    assert resp.status_code < 500
    assert "Set-Cookie" not in resp.headers, resp.headers["Set-Cookie"]
    assert "Cookie" not in resp.headers.get("Vary", "")


def test_pages_keep_their_session(app, client):
    """The rule is the API's only: the same browser's cookie is refreshed by a page."""
    _browser_session(app, client)
    assert "Set-Cookie" in client.get("/").headers


def test_an_api_call_has_no_session_to_write_to(app):
    """A write to the session on an API route is a bug, and says so."""
    with app.test_request_context(LIST):
        assert app.session_interface.is_null_session(session)
        with pytest.raises(RuntimeError, match="no session"):
            session["x"] = 1
    with app.test_request_context("/"):
        assert not app.session_interface.is_null_session(session)


def test_api_posts_need_no_csrf_token(app_factory):
    """With CSRF protection on (as in production), an API POST needs no token and its
    answer sets no cookie: the API is exempt, and CSRF has no session to keep one in."""
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        _, key = apikeys.create("csrf", ["records:write"], actor="test")
        db.session.commit()
    client = app.test_client()
    _browser_session(app, client)
    body = {"member_id": "m-1", "email": "a@example.org", "source": "test", "actor": "test"}
    resp = client.post("/api/v1/members", json=body, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 201, resp.get_json()
    assert "Set-Cookie" not in resp.headers
