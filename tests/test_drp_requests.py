"""Data rights requests from an authorized agent (issue 19), end to end: signed with PyNaCl as
the protocol's examples and its reference agent sign them; access, deletion and opt-out filed,
carried out by Lethe and reported as the protocol's statuses; revocation; regimes and their
deadlines; the status callback checked on the receiving side with the key discovery
publishes; and every bad input refused with the protocol's error answer, audited, filing
nothing."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from nacl.encoding import Base64Encoder
from nacl.signing import SigningKey, VerifyKey
from sqlalchemy import func, select

from rights.agents import drp_requests
from rights.holdings import records
from storage.db import db
from storage.models import AuditEvent, Consent, DrpRequest, RightsRequest
from tests import factories
from tests.helpers import deliver, wait_for
from tests.test_webhooks import Receiver

AGENT = "CR_AA_DRP_ID_001"
BUSINESS = "perkly"
EMAIL = "person1@example.org"


@pytest.fixture
def drp_app(app_factory):
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Agent:
    """An authorized agent as osiraa is one: a key, pairing, signed requests."""

    def __init__(self, app, agent_id=AGENT):
        self.app, self.client, self.id = app, app.test_client(), agent_id
        self.key = SigningKey.generate()
        verify = self.key.verify_key.encode(encoder=Base64Encoder).decode()
        result = app.test_cli_runner().invoke(
            args=["agents", "add", agent_id, "--name", "Permission Slip", "--verify-key", verify]
        )
        assert result.exit_code == 0, result.output
        resp = self.client.post(
            f"/v1/agent/{agent_id}", data=self.sign(self.claims()), content_type="text/plain"
        )
        assert resp.status_code == 200, resp.data
        self.token = resp.get_json()["token"]

    def claims(self, **extra) -> dict:
        now = datetime.now(UTC)
        out = {
            "agent-id": self.id,
            "business-id": BUSINESS,
            "issued-at": now.isoformat(timespec="milliseconds"),
            "expires-at": (now + timedelta(minutes=15)).isoformat(timespec="milliseconds"),
        }
        out.update(extra)
        return {k: v for k, v in out.items() if v is not None}

    def sign(self, claims: dict, key: SigningKey | None = None) -> bytes:
        return base64.b64encode((key or self.key).sign(json.dumps(claims).encode()))

    @property
    def bearer(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def exercise(self, action: str, *, body: bytes | None = None, headers=None, **claims):
        claims = {
            "drp.version": "1.0",
            "exercise": action,
            "regime": "ccpa",
            "name": "Person, One",
            "email": EMAIL,
            "email_verified": True,
            **claims,
        }
        return self.client.post(
            "/v1/data-rights-request",
            data=body if body is not None else self.sign(self.claims(**claims)),
            headers={"Content-Type": "text/plain", **(self.bearer if headers is None else headers)},
        )

    def status(self, request_id: str, headers=None):
        return self.client.get(
            f"/v1/data-rights-request/{request_id}",
            headers=self.bearer if headers is None else headers,
        )

    def revoke(self, request_id: str, reason="I changed my mind", body: bytes | None = None):
        return self.client.delete(
            f"/v1/data-rights-request/{request_id}",
            data=body if body is not None else self.sign({"reason": reason}),
            headers=self.bearer,  # osiraa sends no Content-Type here
        )


@pytest.fixture
def agent(drp_app):
    with drp_app.app_context():
        factories.member(1)
        factories.award(1)
        factories.consent(1)
        factories.commit()
    return Agent(drp_app)


def _iso(value: str) -> datetime:
    assert not value.endswith("Z")  # osiraa parses with Python 3.9's fromisoformat
    return datetime.fromisoformat(value)


def _lethe_request(app, drp_id: str) -> RightsRequest | None:
    with app.app_context():
        drp = db.session.get(DrpRequest, drp_id)
        if drp is None or drp.rights_request_id is None:
            return None
        request = db.session.get(RightsRequest, drp.rights_request_id)
        db.session.expunge(request)
        return request


# --- the three rights, end to end --------------------------------------------------------


def test_access_under_the_ccpa_is_filed_verified_and_fulfilled(drp_app, agent):
    resp = agent.exercise("access", **{"agent-request-id": "osiraa-42"})
    assert resp.status_code == 200, resp.data
    status = resp.get_json()
    assert status["status"] in ("in_progress", "fulfilled")
    assert status["agent_request_id"] == "osiraa-42"
    received = _iso(status["received_at"])
    request = _lethe_request(drp_app, status["request_id"])
    assert request.channel == "drp" and request.regime == "ccpa" and request.verified_at
    assert request.due_at - request.received_at == timedelta(days=45)
    deliver(drp_app)
    status = agent.status(status["request_id"]).get_json()
    assert status["status"] == "fulfilled"
    assert _iso(status["received_at"]) == received


def test_deletion_is_an_erasure_and_its_callback_is_signed_for_the_agent(drp_app, agent, receiver):
    discovery = agent.client.get("/.well-known/data-rights.json").get_json()
    resp = agent.exercise("deletion", status_callback=receiver.url)
    assert resp.status_code == 200, resp.data
    request_id = resp.get_json()["request_id"]
    assert resp.get_json()["status"] == "in_progress"
    assert _iso(resp.get_json()["expected_by"]) - _iso(resp.get_json()["received_at"]) == (
        timedelta(days=45)
    )
    deliver(drp_app)  # the erasure runs; the agent is told
    deliver(drp_app)
    assert agent.status(request_id).get_json()["status"] == "fulfilled"
    wait_for(lambda: any(json.loads(b)["status"] == "fulfilled" for _, b in receiver.received))
    # The receiving side checks each callback with the key discovery published.
    key = VerifyKey(base64.b64decode(discovery["callback_verify_key"].removeprefix("whpk_")))
    for headers, body in receiver.received:
        scheme, signature = headers["webhook-signature"].split(",", 1)
        assert scheme == "v1a"
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
        key.verify(signed, base64.b64decode(signature))
        assert json.loads(body)["request_id"] == request_id
    # The same status is not sent twice.
    count = len(receiver.received)
    deliver(drp_app)
    assert len(receiver.received) == count


def test_opting_out_of_sale_withdraws_the_consent_at_once(drp_app, agent):
    with drp_app.app_context():
        records.upsert_consent(
            {
                "member_id": "m-1",
                "consent_id": "c-sale",
                "purpose": "sale_and_sharing",
                "status": "granted",
                "notice_version": "v1",
                "channel": "signup-web",
                "granted_at": datetime.now(UTC),
            },
            source="test",
            actor="test",
        )
        db.session.commit()
    resp = agent.exercise("sale:opt-out", regime="voluntary")
    assert resp.status_code == 200, resp.data
    status = resp.get_json()
    request = _lethe_request(drp_app, status["request_id"])
    assert request.type == "objection" and request.regime is None  # voluntary: the GDPR's month
    deliver(drp_app)
    assert agent.status(status["request_id"]).get_json()["status"] == "fulfilled"
    with drp_app.app_context():
        consent = db.session.execute(
            select(Consent).where(Consent.purpose == "sale_and_sharing")
        ).scalar_one()
        assert consent.withdrawn_at is not None


def test_opting_in_records_a_consent_for_a_verified_address_only(drp_app, agent):
    resp = agent.exercise("sale:opt_in")
    assert resp.get_json()["status"] == "fulfilled"
    with drp_app.app_context():
        consent = db.session.execute(
            select(Consent).where(Consent.purpose == "sale_and_sharing")
        ).scalar_one()
        assert consent.status == "granted" and consent.channel == f"agent:{AGENT}"
    resp = agent.exercise("sale:opt-in", email_verified=False)
    assert resp.get_json()["status"] == "denied"
    assert resp.get_json()["reason"] == "insuf_verification"


def test_an_address_the_agent_did_not_verify_gets_lethes_own_link(drp_app, agent, mailbox):
    resp = agent.exercise("access", email_verified=False)
    status = resp.get_json()
    assert status["status"] == "in_progress" and status["reason"] == "need_user_verification"
    assert status["user_verification_url"].startswith("http://lethe.test/requests/")
    request = _lethe_request(drp_app, status["request_id"])
    assert request.verified_at is None
    deliver(drp_app)
    assert mailbox.last_to(EMAIL) is not None


def test_revocation_withdraws_the_request_and_tells_the_agent(drp_app, agent, receiver):
    resp = agent.exercise("access", email_verified=False, status_callback=receiver.url)
    request_id = resp.get_json()["request_id"]
    resp = agent.revoke(request_id)
    assert resp.status_code == 200, resp.data
    assert resp.get_json()["status"] == "revoked"
    assert _lethe_request(drp_app, request_id).status == "withdrawn"
    deliver(drp_app)
    wait_for(lambda: any(json.loads(b)["status"] == "revoked" for _, b in receiver.received))
    # Revoked is final: revoking again is refused, not retried.
    again = agent.revoke(request_id, reason="again")
    assert again.status_code == 400 and again.get_json()["fatal"] is False


def test_an_erasure_under_way_cannot_be_revoked(drp_app, agent):
    request_id = agent.exercise("deletion").get_json()["request_id"]
    deliver(drp_app)
    resp = agent.revoke(request_id)
    assert resp.status_code == 400
    assert agent.status(request_id).get_json()["status"] == "fulfilled"


# --- regimes -----------------------------------------------------------------------------


@pytest.mark.parametrize("regime", ["gdpr", "vcdpa", ["ccpa"]])
def test_a_regime_not_covered_is_denied_and_files_nothing(drp_app, agent, regime):
    resp = agent.exercise("access", regime=regime)
    assert resp.status_code == 200
    status = resp.get_json()
    assert (status["status"], status["reason"]) == ("denied", "claim_not_covered")
    assert _lethe_request(drp_app, status["request_id"]) is None


def test_no_email_address_is_no_one_to_match(drp_app, agent):
    resp = agent.exercise("access", email=None, email_verified=None, phone_number="+15555550100")
    assert (resp.get_json()["status"], resp.get_json()["reason"]) == ("denied", "no_match")


def test_the_ccpa_extension_is_45_days(drp_app, agent):
    from rights.lifecycle import requests

    request_id = agent.exercise("deletion", email_verified=False).get_json()["request_id"]
    with drp_app.app_context():
        drp = db.session.get(DrpRequest, request_id)
        request = db.session.get(RightsRequest, drp.rights_request_id)
        original = request.due_at
        requests.extend(request, months=2, reason="Many records to check.", actor="officer")
        db.session.commit()
        assert request.due_at - original == timedelta(days=45)
        assert request.extension_months is None  # not months: the CCPA's 45 days


# --- bad input ---------------------------------------------------------------------------


def _counts(app):
    with app.app_context():
        return (
            db.session.execute(select(func.count(RightsRequest.id))).scalar_one(),
            db.session.execute(select(func.count(DrpRequest.id))).scalar_one(),
        )


def _refusals(app) -> list:
    with app.app_context():
        return [
            row.details
            for row in db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "agent.message_refused")
            ).scalars()
        ]


def _bad_cases(agent: Agent) -> dict:
    other = SigningKey.generate()
    now = datetime.now(UTC)
    late = {
        "issued-at": (now - timedelta(minutes=30)).isoformat(),
        "expires-at": (now - timedelta(minutes=15)).isoformat(),
    }
    return {
        "no token": (dict(headers={}), 403, "unknown_agent"),
        "another token": (dict(headers={"Authorization": "Bearer nope"}), 403, "unknown_agent"),
        "wrong signature": (
            dict(body=agent.sign(agent.claims(exercise="access", email=EMAIL), key=other)),
            403,
            "bad_signature",
        ),
        "another business": (dict(**{"business-id": "acme"}), 403, "wrong_business"),
        "another agent inside": (dict(**{"agent-id": "SOMEONE"}), 403, "wrong_agent"),
        "expired": (dict(**late), 400, "expired"),
        "malformed body": (dict(body=b"not base64 at all!"), 403, "not_base64"),
        "claims not an object": (
            dict(body=base64.b64encode(agent.key.sign(b'"a string"'))),
            400,
            "malformed",
        ),
        "unsupported action": (dict(exercise="access:specific"), 400, "unsupported"),
        "no action": (dict(exercise=None), 400, "unsupported"),
        "unsupported version": (dict(**{"drp.version": "0.5"}), 400, "unsupported"),
        "callback not a URL": (dict(status_callback="file:///etc/passwd"), 400, "unsupported"),
    }


BAD = [
    "no token",
    "another token",
    "wrong signature",
    "another business",
    "another agent inside",
    "expired",
    "malformed body",
    "claims not an object",
    "unsupported action",
    "no action",
    "unsupported version",
    "callback not a URL",
]


@pytest.mark.parametrize("case", BAD)
def test_each_bad_request_gets_the_protocols_error_is_audited_and_files_nothing(
    drp_app, agent, case
):
    kwargs, status, reason = _bad_cases(agent)[case]
    before = _counts(drp_app)
    resp = agent.exercise("access", **kwargs)
    assert resp.status_code == status, resp.data
    error = resp.get_json()
    assert error["code"] == str(status) and error["message"] and "fatal" in error
    assert _counts(drp_app) == before
    assert _refusals(drp_app)[-1]["reason"] == reason
    assert EMAIL not in json.dumps(_refusals(drp_app))


def test_a_replayed_request_is_refused(drp_app, agent):
    body = agent.sign(agent.claims(**{"drp.version": "1.0", "exercise": "access", "email": EMAIL}))
    assert agent.exercise("access", body=body).status_code == 200
    before = _counts(drp_app)
    resp = agent.exercise("access", body=body)
    assert resp.status_code == 400 and resp.get_json()["fatal"] is True
    assert _counts(drp_app) == before and _refusals(drp_app)[-1]["reason"] == "replayed"


def test_another_agents_request_is_not_theirs_to_read_or_revoke(drp_app, agent):
    request_id = agent.exercise("access", email_verified=False).get_json()["request_id"]
    other = Agent(drp_app, agent_id="OTHER_AGENT")
    assert other.status(request_id).status_code == 403
    assert other.revoke(request_id).status_code == 403
    assert agent.status("no-such-request").status_code == 404
    assert agent.status(request_id, headers={}).status_code == 403


def test_the_agent_is_named_to_the_person_and_in_the_queue(drp_app, agent):
    request_id = agent.exercise("access", email_verified=False).get_json()["request_id"]
    with drp_app.app_context():
        drp = db.session.get(DrpRequest, request_id)
        request = db.session.get(RightsRequest, drp.rights_request_id)
        assert drp_requests.agent_name(request) == "Permission Slip"
        events = (
            db.session.execute(
                select(AuditEvent.actor).where(AuditEvent.action == "drp.request_received")
            )
            .scalars()
            .all()
        )
        assert events == [f"agent:{AGENT}"]


def test_the_persons_request_page_says_which_agent_filed_it(drp_app, agent):
    request_id = agent.exercise("access", email_verified=False).get_json()["request_id"]
    request = _lethe_request(drp_app, request_id)
    client = drp_app.test_client()
    with client.session_transaction() as session:
        session["grants"] = {request.id: "9999-12-31T00:00:00+00:00"}
    page = client.get(f"/requests/{request.reference}").get_data(as_text=True)
    said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Filed by Permission Slip, the authorized agent you asked to act for you" in said


def test_the_access_report_says_which_agent_filed_the_request(drp_app, agent):
    request_id = agent.exercise("access").get_json()["request_id"]
    deliver(drp_app)
    request = _lethe_request(drp_app, request_id)
    with drp_app.app_context():
        from rights.access import access

        meta = access.report_meta(db.session.get(RightsRequest, request.id))
        assert meta["request"]["filed_for_you_by"] == "Permission Slip"


# --- found by review ----------------------------------------------------------------------


def test_a_need_user_verification_status_reaches_the_agents_callback(drp_app, agent, receiver):
    """It could not be sent: the worker built its URL with url_for, outside any request."""
    agent.exercise("access", email_verified=False, status_callback=receiver.url)
    deliver(drp_app)
    wait_for(lambda: receiver.received)
    body = json.loads(receiver.received[-1][1])
    assert body["reason"] == "need_user_verification"
    assert body["user_verification_url"].startswith("http://lethe.test/requests/")
    with drp_app.app_context():
        from storage.models import OutboxMessage

        failed = db.session.execute(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status != "sent")
        ).scalar_one()
        assert failed == 0


def test_opting_in_answers_the_same_for_a_member_and_a_stranger(drp_app, agent):
    """It told the agent whether an address was a member's (fulfilled, or denied no_match)."""
    member = agent.exercise("sale:opt-in").get_json()
    stranger = agent.exercise("sale:opt-in", email="stranger@example.org").get_json()
    assert (member["status"], member.get("reason")) == (stranger["status"], stranger.get("reason"))
    assert member["status"] == "fulfilled"


@pytest.mark.parametrize("regime", ["x" * 200, "cc\x00pa"])
def test_an_odd_regime_is_not_covered_and_no_server_error(drp_app, agent, regime):
    resp = agent.exercise("access", regime=regime)
    assert resp.status_code == 200
    assert resp.get_json()["reason"] == "claim_not_covered"


@pytest.mark.parametrize("email", ["@", " @ ", "a@b\x00c.org", "x" * 400 + "@example.org", 42])
def test_an_address_that_is_not_one_is_no_one_to_match(drp_app, agent, email):
    resp = agent.exercise("access", email=email)
    assert resp.status_code == 200
    assert (resp.get_json()["status"], resp.get_json()["reason"]) == ("denied", "no_match")


def test_an_agent_request_id_with_control_characters_is_refused(drp_app, agent):
    before = _counts(drp_app)
    resp = agent.exercise("access", **{"agent-request-id": "id\x00with-nul"})
    assert resp.status_code == 400 and _counts(drp_app) == before


def test_the_same_reason_revokes_two_requests_but_not_one_twice(drp_app, agent):
    """Signatures are deterministic: one reason for two requests is the same body, and was
    refused as a replay."""
    first = agent.exercise("access", email_verified=False).get_json()["request_id"]
    second = agent.exercise("access", email_verified=False, email="person2@example.org")
    second = second.get_json()["request_id"]
    body = agent.sign({"reason": "I changed my mind"})
    assert agent.revoke(first, body=body).status_code == 200
    assert agent.revoke(second, body=body).status_code == 200
    again = agent.revoke(first, body=body)
    assert again.status_code == 400  # revoked already (and the same message again)


def test_a_removed_agent_is_no_longer_told_anything(drp_app, agent, receiver):
    agent.exercise("deletion", status_callback=receiver.url)
    assert drp_app.test_cli_runner().invoke(args=["agents", "remove", AGENT]).exit_code == 0
    deliver(drp_app)
    deliver(drp_app)
    assert receiver.received == []


def test_errors_on_the_protocols_paths_are_its_error_object(drp_app, agent):
    resp = agent.client.put("/v1/data-rights-request", data=b"x", headers=agent.bearer)
    assert resp.status_code == 405 and resp.get_json()["code"] == "405"
    resp = agent.client.get("/v1/no-such-thing")
    assert resp.status_code == 404 and resp.get_json()["code"] == "404"


def test_a_deeply_nested_message_is_refused_not_a_server_error(drp_app, agent):
    deep = ('{"a":' * 5000) + "1" + ("}" * 5000)
    body = base64.b64encode(agent.key.sign(deep.encode()))
    resp = agent.exercise("access", body=body)
    assert resp.status_code == 400 and resp.get_json()["code"] == "400"
    pairing = agent.client.post(f"/v1/agent/{AGENT}", data=body, content_type="text/plain")
    assert pairing.status_code == 403 and pairing.data == b""


def test_asking_for_an_unknown_request_is_audited(drp_app, agent):
    assert agent.status("00000000-0000-0000-0000-000000000000").status_code == 404
    assert _refusals(drp_app)[-1]["reason"] == "unknown_request"
