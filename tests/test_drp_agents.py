"""Authorized agents, first part of the Data Rights Protocol (issue 19): agents an admin
registers with their verify keys, discovery, and pairing — signed exactly as the protocol's
examples and its reference agent (osiraa) sign: ``base64(SigningKey.sign(json.dumps(obj)))``
sent as text/plain. Every refusal is a bare 403, is audited, and gives no token."""

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from nacl.encoding import Base64Encoder, HexEncoder
from nacl.signing import SigningKey
from sqlalchemy import select

from rights.agents import registry
from storage.db import db
from storage.models import Agent, AuditEvent

AGENT = "CR_AA_DRP_ID_001"
BUSINESS = "perkly"


@pytest.fixture
def agent_key():
    return SigningKey.generate()


@pytest.fixture
def agent(app, runner, agent_key):
    key = agent_key.verify_key.encode(encoder=Base64Encoder).decode()
    result = runner.invoke(
        args=["agents", "add", AGENT, "--name", "Permission Slip", "--verify-key", key]
    )
    assert result.exit_code == 0, result.output
    return agent_key


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")  # as osiraa sends them: +00:00


def _claims(**changes) -> dict:
    now = datetime.now(UTC)
    claims = {
        "agent-id": AGENT,
        "business-id": BUSINESS,
        "issued-at": _iso(now),
        "expires-at": _iso(now + timedelta(minutes=15)),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(key: SigningKey, claims: dict) -> bytes:
    return base64.b64encode(key.sign(json.dumps(claims).encode()))


def _pair(client, key, claims=None, agent_id=AGENT, body=None):
    return client.post(
        f"/v1/agent/{agent_id}",
        data=body if body is not None else _signed(key, claims or _claims()),
        headers={"Content-Type": "text/plain"},
    )


def _refusals(app) -> list[dict]:
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "agent.message_refused")
        ).scalars()
        return [{"target": r.target, **r.details} for r in rows]


def test_discovery_names_the_api_and_the_actions(app, client):
    resp = client.get("/.well-known/data-rights.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["version"] == "1.0" and doc["api_base"] == app.config["PUBLIC_URL"].rstrip("/")
    assert {"access", "deletion", "sale:opt-out", "sale:opt-in"} == set(doc["actions"])
    assert doc["business_id"] == BUSINESS


def test_an_agent_pairs_and_its_token_is_kept_only_hashed(app, client, agent):
    resp = _pair(client, agent)
    assert resp.status_code == 200, resp.data
    answer = resp.get_json()
    assert answer["agent-id"] == AGENT and len(answer["token"]) >= 43  # 256 bits
    token = answer["token"]
    with app.app_context():
        row = db.session.get(Agent, AGENT)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in json.dumps([str(v) for v in vars(row).values()])
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/v1/agent/{AGENT}", headers=bearer).get_json() == {}
    assert client.get(f"/v1/agent/{AGENT}").status_code == 403
    assert (
        client.get(f"/v1/agent/{AGENT}", headers={"Authorization": "Bearer x"}).status_code == 403
    )
    assert client.get("/v1/agent/SOMEONE_ELSE", headers=bearer).status_code == 403
    # Pairing again replaces the token: only the latest works.
    newer = _pair(client, agent).get_json()["token"]
    assert client.get(f"/v1/agent/{AGENT}", headers=bearer).status_code == 403
    assert (
        client.get(f"/v1/agent/{AGENT}", headers={"Authorization": f"Bearer {newer}"}).status_code
        == 200
    )


def test_a_hex_verify_key_is_taken_too(app, client, runner):
    key = SigningKey.generate()
    hexed = key.verify_key.encode(encoder=HexEncoder).decode()
    result = runner.invoke(
        args=["agents", "add", "HEX_AGENT", "--name", "Hex", "--verify-key", hexed]
    )
    assert result.exit_code == 0, result.output
    assert (
        _pair(client, key, _claims(**{"agent-id": "HEX_AGENT"}), agent_id="HEX_AGENT").status_code
        == 200
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["BAD ID", "--name", "x", "--verify-key", "AAAA"], "agent_id"),
        (["GOOD_ID", "--name", "x", "--verify-key", "not a key"], "verify_key"),
        (["GOOD_ID", "--name", "", "--verify-key", base64.b64encode(b"k" * 32).decode()], "name"),
    ],
)
def test_a_malformed_agent_is_not_registered(app, runner, args, says):
    result = runner.invoke(args=["agents", "add", *args])
    assert result.exit_code != 0 and says in result.output
    with app.app_context():
        assert registry.listed() == []


def test_an_agent_registered_twice_is_refused_and_listed_once(app, runner, agent):
    key = agent.verify_key.encode(encoder=Base64Encoder).decode()
    result = runner.invoke(args=["agents", "add", AGENT, "--name", "Again", "--verify-key", key])
    assert result.exit_code != 0 and "registered already" in result.output
    listed = runner.invoke(args=["agents", "list"]).output
    assert listed.count(AGENT) == 1 and "Permission Slip" in listed and "not paired" in listed


def test_a_removed_agent_can_no_longer_pair_nor_use_its_token(app, client, runner, agent):
    token = _pair(client, agent).get_json()["token"]
    assert runner.invoke(args=["agents", "remove", AGENT]).exit_code == 0
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/v1/agent/{AGENT}", headers=bearer).status_code == 403
    assert _pair(client, agent).status_code == 403
    assert _refusals(app)[-1] == {
        "target": f"agent:{AGENT}",
        "what": "pairing",
        "reason": "unknown_agent",
    }


def _bad(agent_key):
    now = datetime.now(UTC)
    other = SigningKey.generate()
    return {
        "unknown agent": (dict(agent_id="NOBODY"), "unknown_agent"),
        "signed by another key": (dict(body=_signed(other, _claims())), "bad_signature"),
        "not base64": (dict(body=b"%%% not base64 %%%"), "not_base64"),
        "signature cut": (dict(body=base64.b64encode(b"x" * 10)), "bad_signature"),
        "not JSON": (dict(body=base64.b64encode(agent_key.sign(b"not json"))), "malformed"),
        "a JSON list": (dict(body=base64.b64encode(agent_key.sign(b"[1, 2]"))), "malformed"),
        "another agent-id inside": (dict(claims=_claims(**{"agent-id": "OTHER"})), "wrong_agent"),
        "another business": (dict(claims=_claims(**{"business-id": "acme"})), "wrong_business"),
        "expired": (
            dict(
                claims=_claims(
                    **{
                        "issued-at": _iso(now - timedelta(minutes=20)),
                        "expires-at": _iso(now - timedelta(minutes=5)),
                    }
                )
            ),
            "expired",
        ),
        "issued in the future": (
            dict(
                claims=_claims(
                    **{
                        "issued-at": _iso(now + timedelta(minutes=5)),
                        "expires-at": _iso(now + timedelta(minutes=20)),
                    }
                )
            ),
            "not_yet_valid",
        ),
        "lives too long": (
            dict(claims=_claims(**{"expires-at": _iso(now + timedelta(days=3))})),
            "too_long_lived",
        ),
        "no time zone": (dict(claims=_claims(**{"issued-at": "2026-11-29T10:00:00"})), "malformed"),
        "no expiry": (dict(claims=_claims(**{"expires-at": None})), "malformed"),
        "too large": (dict(body=b"A" * (64 * 1024 + 4)), "too_large"),
    }


@pytest.mark.parametrize("case", list(_bad(SigningKey.generate())))
def test_each_bad_pairing_is_a_bare_403_audited_and_gives_no_token(app, client, agent, case):
    kwargs, reason = _bad(agent)[case]
    resp = _pair(client, agent, **kwargs)
    assert resp.status_code == 403 and resp.data == b""
    refusals = _refusals(app)
    assert refusals and refusals[-1]["reason"] == reason and refusals[-1]["what"] == "pairing"
    with app.app_context():
        assert db.session.get(Agent, AGENT).token_hash is None
        details = json.dumps([r for r in refusals])
    assert "issued-at" not in details and BUSINESS not in details  # never the message


def test_a_replayed_pairing_message_is_refused(app, client, agent):
    body = _signed(agent, _claims())
    assert _pair(client, agent, body=body).status_code == 200
    resp = _pair(client, agent, body=body)
    assert resp.status_code == 403 and _refusals(app)[-1]["reason"] == "replayed"
