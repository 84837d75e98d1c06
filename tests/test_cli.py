"""The CLI shells: API keys, demo data, worker, and deciding requests from the shell."""

from freezegun import freeze_time

from rights.ledger import apikeys
from rights.lifecycle import requests
from storage.db import db
from storage.models import Member


def test_apikeys_create_prints_the_key_alone_on_the_last_line(app, runner):
    result = runner.invoke(args=["apikeys", "create", "platform", "--scopes", "*"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("lethe_") and " " not in key
    with app.app_context():
        row = apikeys.authenticate(key)
        assert row is not None and set(row.scopes) == set(apikeys.SCOPES)
        assert key not in row.key_hash


def test_apikeys_create_refuses_unknown_scopes(runner):
    result = runner.invoke(args=["apikeys", "create", "x", "--scopes", "records:write nope"])
    assert result.exit_code != 0
    assert "Unknown scope(s): nope" in result.output


def test_demo_load_is_idempotent(app, runner):
    first = runner.invoke(args=["demo", "load", "--members", "5"])
    assert first.exit_code == 0 and "6 members" in first.output
    second = runner.invoke(args=["demo", "load", "--members", "5"])
    assert "already loaded" in second.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Member.id))).scalar_one() == 6


def test_worker_once_sends_the_queue(app, runner, mailbox):
    with app.app_context():
        requests.file(type="access", email="cli@example.org", channel="web", actor="subject")
        db.session.commit()
    result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0 and "sent 1" in result.output
    assert mailbox.last_to("cli@example.org")


def test_extend_and_refuse_from_the_shell(app, runner):
    with freeze_time("2027-01-31T12:00:00Z"):
        with app.app_context():
            a = requests.file(
                type="erasure", email="a@example.org", channel="api", verified=True, actor="t"
            ).reference
            b = requests.file(
                type="objection",
                email="b@example.org",
                channel="api",
                verified=True,
                actor="t",
                details={"purpose": "profiling"},
            ).reference
            db.session.commit()
        out = runner.invoke(
            args=[
                "requests",
                "extend",
                a,
                "--months",
                "2",
                "--reason",
                "three brands hold copies",
                "--actor",
                "dpo",
            ]
        )
        assert out.exit_code == 0 and "due 2027-04-30" in out.output
        again = runner.invoke(
            args=["requests", "extend", a, "--months", "1", "--reason", "x", "--actor", "dpo"]
        )
        assert again.exit_code != 0 and "already extended" in again.output
        no_reason = runner.invoke(args=["requests", "refuse", b, "--reason", " ", "--actor", "dpo"])
        assert no_reason.exit_code != 0 and "reason" in no_reason.output
        refused = runner.invoke(
            args=["requests", "refuse", b, "--reason", "manifestly unfounded", "--actor", "dpo"]
        )
        assert refused.exit_code == 0 and "refused" in refused.output
        listing = runner.invoke(args=["requests", "list"])
        assert a in listing.output and b in listing.output and "2 request(s)" in listing.output
    with app.app_context():
        assert requests.decision_reason(requests.by_reference(b)) == "manifestly unfounded"
