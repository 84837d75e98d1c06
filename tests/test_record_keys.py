"""Record keys that forgive typing (issue 16): Crockford's Base32 with a check symbol, typos
refused before any look-up, old keys still found, the box keeps what was typed, and only
failed look-ups count towards the rate limit."""

import contextlib
import hashlib
import itertools
import re
import uuid

import pytest
import redis
from sqlalchemy import event, select, update

import config
from app import create_app
from demo import loader as demo
from rights.erasure import erasure, receipts, record_keys
from rights.lifecycle import requests
from storage.db import db
from storage.models import Receipt, ReceiptRecord
from tests.helpers import assert_error

TYPO = "This key has a typo in it: check each character against your email."
TOO_MANY = "Too many tries with a wrong key. Try again in a minute."
NEW_FORMAT = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){6}")

# Made by new_record_key() as it was before this change (base32 of 160 random bits, A-Z and
# 2-7, no check symbol), with the record_key_hash() it stored. It has O, I and L in it.
LEGACY_KEY = "ZQTI-JLH2-HCWQ-DILR-6VW5-WPLO-SCCH-MUUX"
LEGACY_HASH = "3e4544b6c66510d16c4e5d221e346e8e2744c7e9ed261437ef19b450e8665aca"
# ... and as someone types it from their email: lower case, spaces, 1 for I and 0 for O.
LEGACY_TYPED = "zqt1 jlh2 hcwq d1lr 6vw5 wpl0 scch muux"

# A key of the new format with a 0 and a 1 in it (its check symbol is K).
KEY = "01AB-CDEF-GHJK-MNPQ-RSTV-WXYZ-234K"
KEY_TYPED = "oi ab cdef ghjk mnpq rstv wxyz 234k"  # O for 0, I for 1, lower case, spaces


def _one_typo(key: str) -> str:
    """``key`` with its first symbol replaced by another (not an alias of it)."""
    first = key[0]
    other = next(ch for ch in record_keys.ALPHABET if ch != first)
    return other + key[1:]


# --- the codec --------------------------------------------------------------------------


def test_new_keys_are_crockford_base32_with_a_check_symbol_and_at_least_128_bits():
    keys = {record_keys.new() for _ in range(500)}
    assert len(keys) == 500
    for key in keys:
        assert NEW_FORMAT.fullmatch(key), key
        plain = key.replace("-", "")
        assert plain[-1] == record_keys.check_symbol(plain[:-1])
        assert record_keys.normalise(key) == plain
        assert not set(plain) & set("ILOU")
    # 27 random symbols of 5 bits, less the keys whose check symbol would be one of *~$=U
    # (drawn again): log2(32**27 * 32/37) bits.
    assert record_keys.RANDOM_SYMBOLS * 5 - 0.21 > 128
    # Had they not been drawn again, 500 keys would all avoid them with odds (32/37)**500.
    assert all(key[-1] in record_keys.ALPHABET for key in keys)


def test_case_spaces_dashes_and_the_look_alike_letters_do_not_matter():
    canonical = KEY.replace("-", "")
    for typed in (KEY, KEY.lower(), KEY_TYPED, " ol-AB CDEF-ghjk mnpq\trstv wxyz 234K\n"):
        assert record_keys.normalise(typed) == canonical, typed
        assert record_keys.format_key(typed) == KEY
        assert record_keys.fingerprint(typed) == hashlib.sha256(canonical.encode()).hexdigest()
        assert not record_keys.has_typo(typed)


def test_every_wrong_character_and_every_swap_of_neighbours_is_caught():
    plain = KEY.replace("-", "")
    aliases = {"0": "O", "1": "IL"}
    caught = 0
    for i, ch in itertools.product(range(len(plain)), record_keys.CHECK_SYMBOLS):
        if ch == plain[i]:
            continue
        typed = plain[:i] + ch + plain[i + 1 :]
        assert record_keys.normalise(typed) is None, typed
        assert record_keys.has_typo(typed), typed
        caught += 1
    for i in range(len(plain) - 1):
        if plain[i] != plain[i + 1]:
            swapped = plain[:i] + plain[i + 1] + plain[i] + plain[i + 2 :]
            assert record_keys.has_typo(swapped), swapped
    # A dropped or doubled character is a typo too; an alias of the right symbol is not.
    assert record_keys.has_typo(plain[1:]) and record_keys.has_typo(plain + plain[-1])
    for i, ch in enumerate(plain):
        for alias in aliases.get(ch, ""):
            assert record_keys.normalise(plain[:i] + alias + plain[i + 1 :]) == plain
    assert caught == len(plain) * (len(record_keys.CHECK_SYMBOLS) - 1)


def test_old_keys_read_as_they_were_issued_with_0_and_1_for_o_and_i():
    canonical = LEGACY_KEY.replace("-", "")
    for typed in (LEGACY_KEY, LEGACY_KEY.lower(), LEGACY_TYPED):
        assert record_keys.normalise(typed) == canonical, typed
        assert record_keys.fingerprint(typed) == LEGACY_HASH
        assert receipts.record_key_hash(typed) == LEGACY_HASH
        assert record_keys.format_key(typed) == LEGACY_KEY
        assert not record_keys.has_typo(typed)
    assert len(record_keys.normalise(KEY)) == record_keys.LENGTH != record_keys.LEGACY_LENGTH
    # An old key with a character its alphabet never had (8) cannot be one: a typo.
    assert record_keys.has_typo(LEGACY_KEY.replace("Z", "8", 1))


@pytest.mark.parametrize("text", ["", "nonsense", "not a key", "x" * 100, "NOPE-NOPE", None, 7])
def test_text_that_is_no_key_is_neither_a_key_nor_a_typo(text):
    assert record_keys.normalise(text) is None
    assert record_keys.fingerprint(text) is None
    assert not record_keys.has_typo(text)


# --- looking keys up --------------------------------------------------------------------


def _erase_someone(app, monkeypatch=None, key: str | None = None) -> str:
    """Erase the demo's story member; the record key they were given (``key`` if set)."""
    if key is not None:
        monkeypatch.setattr(receipts, "new_record_key", lambda: key)
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        req = requests.file(
            type="erasure",
            member_id=demo.STORY_MEMBER,
            channel="api",
            verified=True,
            actor="apikey:platform",
        )
        db.session.commit()
        issued = erasure.reveal_record_key(erasure.run(req.id))
        db.session.commit()
    return issued


def _issued_before_this_change(app) -> None:
    """Make the stored receipt (and its key-store copy) one issued with LEGACY_KEY."""
    with app.app_context():
        for model in (Receipt, ReceiptRecord):
            db.session.execute(update(model).values(record_key_hash=LEGACY_HASH))
        db.session.commit()


@contextlib.contextmanager
def _receipt_queries(app):
    """The SQL statements that touch a receipt table (either database), run in the block."""
    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if "receipt" in statement.lower():
            seen.append(statement)

    with app.app_context():
        engines = list(db.engines.values())
    for engine in engines:
        event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", listen)


def _box(page: str) -> str:
    """The value in the record key box."""
    field = re.search(r"<input[^>]*name=\"record_key\"[^>]*>", page).group(0)
    value = re.search(r'value="([^"]*)"', field)
    return value.group(1) if value else ""


def test_an_issued_key_is_in_the_new_format_and_works_typed_loosely(app, client):
    key = _erase_someone(app)
    assert NEW_FORMAT.fullmatch(key), key
    typed = key.lower().replace("-", " ")
    assert client.post("/api/v1/statements", json={"record_key": typed}).status_code == 200
    page = client.post("/records", data={"record_key": typed})
    assert page.status_code == 200 and "What we still hold about you" in page.get_data(True)


def test_look_alike_letters_open_the_statement(app, client, monkeypatch):
    _erase_someone(app, monkeypatch, key=KEY)
    resp = client.post("/api/v1/statements", json={"record_key": KEY_TYPED})
    assert resp.status_code == 200 and resp.get_json()["statement"].count(".") == 2
    page = client.post("/records", data={"record_key": KEY_TYPED})
    assert page.status_code == 200 and "What we still hold about you" in page.get_data(True)


def test_a_key_issued_before_this_change_still_opens_its_statement(app, client):
    _erase_someone(app)
    _issued_before_this_change(app)
    for typed in (LEGACY_KEY, LEGACY_TYPED):
        resp = client.post("/api/v1/statements", json={"record_key": typed})
        assert resp.status_code == 200, typed
        page = client.post("/records", data={"record_key": typed})
        assert page.status_code == 200 and "What we still hold about you" in page.get_data(True)
    # The receipt file prints it as it was issued, however it was typed.
    again = client.post("/records", data={"record_key": LEGACY_TYPED, "download": "receipt"})
    assert again.status_code == 200 and LEGACY_KEY in again.get_data(as_text=True)


def test_a_typo_is_refused_with_its_message_before_any_look_up(app, client, monkeypatch):
    _erase_someone(app, monkeypatch, key=KEY)
    typo = _one_typo(KEY)
    with _receipt_queries(app) as seen:
        page = client.post("/records", data={"record_key": typo})
        api = client.post("/api/v1/statements", json={"record_key": typo})
    assert seen == []  # neither database was asked
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    # Next to the field, and in the summary at the top of the form.
    field_error = re.search(r'<p class="error" id="record_key-error">([^<]*)</p>', html)
    assert field_error and TYPO in field_error.group(1)
    summary = re.search(r'<div class="error-summary" role="alert">(.*?)</div>', html, re.S)
    assert summary and TYPO in summary.group(1)
    assert 'aria-invalid="true"' in html and "No record matches" not in html
    assert _box(html) == typo
    err = assert_error(api, 422, "invalid", fields=["record_key"])
    assert err["fields"]["record_key"] == [TYPO]
    # The listener sees look-ups: a key without a typo is looked up.
    with _receipt_queries(app) as seen:
        assert client.post("/api/v1/statements", json={"record_key": KEY}).status_code == 200
    assert seen


def test_the_box_keeps_what_was_typed_after_a_failure_and_never_puts_it_in_a_url(client):
    unknown = record_keys.new()
    resp = client.post("/records", data={"record_key": unknown.lower()})
    assert resp.status_code == 404
    page = resp.get_data(as_text=True)
    assert "No record matches this key" in page
    assert _box(page) == unknown.lower()
    assert 'autocomplete="off"' in page
    assert re.search(r'<form method="post" action="/records"', page)
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Location" not in resp.headers


def test_unknown_and_malformed_keys_still_get_one_answer(app, client):
    """A key of the right shape nobody holds, and text that is no key at all: the same 404,
    in the form and in the API (only the box, which keeps what was typed, differs)."""
    pages, answers = set(), set()
    for typed in (record_keys.new(), "nonsense", LEGACY_KEY):
        page = client.post("/records", data={"record_key": typed})
        assert page.status_code == 404
        pages.add(page.get_data(as_text=True).replace(f'value="{typed}"', ""))
        api = client.post("/api/v1/statements", json={"record_key": typed})
        assert api.status_code == 404
        answers.add(api.get_data())
    assert len(pages) == 1 and len(answers) == 1


@pytest.mark.parametrize("door", ["web", "api"])
def test_right_look_ups_after_typos_are_never_refused(app_factory, monkeypatch, door):
    """Only failed look-ups count: two typos, then five right look-ups in the same minute."""
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STATEMENTS="5 per minute")
    _erase_someone(app, monkeypatch, key=KEY)
    client = app.test_client()

    def post(key):
        if door == "web":
            return client.post("/records", data={"record_key": key})
        return client.post("/api/v1/statements", json={"record_key": key})

    assert [post(_one_typo(KEY)).status_code for _ in range(2)] == [422, 422]
    assert [post(KEY_TYPED).status_code for _ in range(5)] == [200] * 5
    # Three more failures make five: then even the right key waits, told why in words.
    assert [post(record_keys.new()).status_code for _ in range(3)] == [404] * 3
    for key in (KEY, record_keys.new()):
        limited = post(key)
        assert limited.status_code == 429
        assert 0 < int(limited.headers["Retry-After"]) <= 61
        if door == "web":
            page = limited.get_data(as_text=True)
            assert TOO_MANY in page and "Too Many Requests" not in page
            assert _box(page) == key  # the box keeps it here too
            assert "What we still hold" not in page
        else:
            assert_error(limited, 429)
            assert limited.get_json()["error"]["message"] == TOO_MANY


def test_the_form_and_the_api_share_one_budget_per_client(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STATEMENTS="4 per minute")
    client = app.test_client()
    for _ in range(2):
        assert client.post("/records", data={"record_key": record_keys.new()}).status_code == 404
        resp = client.post("/api/v1/statements", json={"record_key": record_keys.new()})
        assert resp.status_code == 404
    assert client.post("/records", data={"record_key": KEY}).status_code == 429
    assert client.post("/api/v1/statements", json={"record_key": KEY}).status_code == 429
    # Another client has its own budget.
    other = app.test_client()
    resp = other.post(
        "/records", data={"record_key": KEY}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )
    assert resp.status_code == 404


def _redis_or_skip(url: str) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        pytest.skip(f"no Redis at {url}")


def test_failures_are_counted_in_the_shared_store_across_processes(app_factory):
    """Each gunicorn worker builds its own app: with Redis they count one client's failures
    together (a second app, as another process would, sees the first one's)."""
    url = "redis://127.0.0.1:6379"
    _redis_or_skip(url)
    settings = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STATEMENTS": "3 per minute",
        "RATELIMIT_STORAGE_URI": url,
        "RATELIMIT_KEY_PREFIX": f"lethe-test-{uuid.uuid4().hex}",
    }
    first = app_factory(**settings).test_client()
    for _ in range(3):
        resp = first.post("/api/v1/statements", json={"record_key": record_keys.new()})
        assert resp.status_code == 404
    second = app_factory(**settings).test_client()
    assert second.post("/records", data={"record_key": KEY}).status_code == 429
    store = redis.Redis.from_url(url)
    for name in store.scan_iter(f"*{settings['RATELIMIT_KEY_PREFIX']}*"):
        store.delete(name)


def test_production_refuses_per_process_rate_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_ENV_NAME", "production")
    monkeypatch.setenv("LETHE_MAIL_BACKEND", "smtp")
    monkeypatch.setenv("LETHE_SECRET_KEY", "s" * 40)
    for name in ("KEY_ENCRYPTION_KEY", "BLIND_INDEX_KEY"):
        monkeypatch.setenv(f"LETHE_{name}", "A" * 43 + "=")
    monkeypatch.delenv("LETHE_RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(config.ConfigError, match="LETHE_RATELIMIT_STORAGE_URI"):
        create_app(instance_path=str(tmp_path))
    # A shared store is enough to start (nothing dials it until a limited request comes).
    monkeypatch.setenv("LETHE_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:1")
    assert (
        create_app(instance_path=str(tmp_path))
        .config["RATELIMIT_STORAGE_URI"]
        .startswith("redis://")
    )


def test_receipts_keep_their_names_and_use_the_codec(app):
    assert receipts.new_record_key() != receipts.new_record_key()
    assert NEW_FORMAT.fullmatch(receipts.new_record_key())
    assert receipts.normalise_record_key(KEY_TYPED) == KEY.replace("-", "")
    assert receipts.format_record_key(LEGACY_TYPED) == LEGACY_KEY
    assert receipts.record_key_hash(_one_typo(KEY)) is None
    with app.app_context():
        assert erasure.receipt_by_record_key(KEY) is None
        assert db.session.execute(select(Receipt)).first() is None
