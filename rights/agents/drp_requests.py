"""Data rights requests an authorized agent files (DRP 1.0 §2.01–2.04), mapped onto Lethe's
rights, and the protocol's status of each.

- **Actions.** ``access`` and ``access:categories`` → an access request; ``deletion`` → an
  erasure; ``sale:opt-out`` → an objection to the sale and sharing of personal information
  (absolute: done once the request stands, the consent withdrawn); ``sale:opt-in`` → a
  consent given to it, recorded at once (only for an address the agent verified). The
  protocol spells them with ``-`` or ``_`` after the colon; both are taken.
- **Regimes.** ``ccpa`` (45 days, one 45-day extension) or voluntary (no regime, or
  "voluntary": the GDPR's calendar). Any other regime is answered ``denied`` /
  ``claim_not_covered`` and files nothing.
- **Identity.** The agent vouches for the claims it signs: an ``email`` with
  ``email_verified`` true files the request verified, in the agent's name; an unverified
  address files it unverified, and Lethe emails the person its own single-use link
  (``in_progress`` / ``need_user_verification``). Without an email address there is no one to
  match: ``denied`` / ``no_match`` (Lethe finds people by their address).
- **Status.** Read from the Lethe request each time (:func:`status_of`); every change is
  pushed to the agent's ``status_callback`` by the worker (:func:`callback_steps`): signed
  with Lethe's Ed25519 key as Standard Webhooks' asymmetric scheme says (``v1a``), through the
  webhooks' SSRF-safe client, retried by the outbox until the agent answers 2xx.
"""

import base64
import json
import secrets
import time
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from rights.delivery import outbox
from rights.errors import InvalidTransition, RightsError
from rights.holdings import records, subjects
from rights.ledger import audit, signing
from rights.lifecycle import requests
from rights.recipients import outbound_http
from rights.recipients.webhook_subscribers import check_target
from storage.clock import utcnow
from storage.commit_notes import CommitNotes
from storage.db import db
from storage.models import (
    Agent,
    DrpRequest,
    Member,
    RequestEvent,
    RequestStatus,
    RightsRequest,
    Subject,
)
from storage.steps import Steps

VERSIONS = ("0.9.3", "0.9.4", "1.0")
ACTIONS = {
    "access": "access",
    "access:categories": "access",
    "deletion": "erasure",
    "sale:opt_out": "objection",
    "sale:opt_in": "consent",
}
SALE = "sale_and_sharing"  # the objection purpose and the consent purpose
REGIMES = ("ccpa", "voluntary")
FINAL = ("fulfilled", "denied", "revoked", "expired")
CALLBACK_JOB = "drp.status_callback"
DETAILS = {
    "claim_not_covered": "This business answers requests under the CCPA, or voluntarily.",
    "no_match": (
        "We find the people we hold data about by their email address; no usable address was given."
    ),
    "insuf_verification_refused": "The person did not confirm the request was theirs.",
    "insuf_verification": "Opting in needs an email address the agent has verified.",
    "other": "The privacy team declined this request; the person has been told why.",
}


class Unsupported(RightsError):
    """A request the protocol's error answer refuses (400): nothing is filed."""


class CallbackFailed(Exception):
    """The agent's callback did not answer 2xx: the outbox tries again later."""


def action_of(value: object) -> str | None:
    """The protocol's action, normalised (``sale:opt-out`` → ``sale:opt_out``); a list of one
    (older agents) is taken."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        return None
    head, _, tail = value.partition(":")
    return f"{head}:{tail.replace('-', '_')}" if tail else value


def submit(agent: Agent, claims: dict) -> DrpRequest:
    """File what a checked message asks (flushes). Raises :class:`Unsupported`."""
    if claims.get("drp.version") not in (None, *VERSIONS):
        raise Unsupported("Unsupported protocol version.")
    action = action_of(claims.get("exercise"))
    if action not in ACTIONS:
        raise Unsupported("Unsupported rights actions submitted.")
    callback = claims.get("status_callback")
    if callback is not None:
        if not isinstance(callback, str) or len(callback) > 500:
            raise Unsupported("The status_callback is not a URL.")
        try:
            check_target(callback)
        except RightsError:
            raise Unsupported("The status_callback is not a URL Lethe may call.") from None
    agent_request_id = claims.get("agent-request-id")
    if agent_request_id is not None and not _plain(agent_request_id, 200):
        raise Unsupported("agent-request-id is a string of at most 200 printable characters.")
    regime = claims.get("regime") or "voluntary"
    if not _plain(regime, 24):
        regime = "unknown"  # not one Lethe covers: denied below
    drp = DrpRequest(
        agent_id=agent.id,
        agent_request_id=agent_request_id,
        action=action,
        regime=regime if isinstance(regime, str) else "unknown",
        status_callback=callback,
        received_at=utcnow(),
    )
    db.session.add(drp)
    email = claims.get("email")
    if drp.regime not in REGIMES:
        _deny(drp, "claim_not_covered")
    elif not _email(email):
        _deny(drp, "no_match")
    elif ACTIONS[action] == "consent":
        _opt_in(drp, agent, email, claims.get("email_verified") is True)
    else:
        _file(drp, agent, email, claims.get("email_verified") is True)
    db.session.flush()
    audit.record(
        f"agent:{agent.id}",
        "drp.request_received",
        subject_ref=_subject_ref(drp),
        target=f"drp:{drp.id}",
        details={"action": action, "regime": drp.regime, "status": status_of(drp)["status"]},
    )
    queue_callback(drp)
    return drp


def _plain(value: object, longest: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest and value.isprintable()


def _email(value: object) -> bool:
    if not _plain(value, 320):
        return False
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _deny(drp: DrpRequest, reason: str) -> None:
    drp.status, drp.reason = "denied", reason


def _file(drp: DrpRequest, agent: Agent, email: str, verified: bool) -> None:
    kind = ACTIONS[drp.action]
    details = {"purpose": SALE} if kind == "objection" else {}
    request = requests.file(
        type=kind,
        email=email,
        details=details,
        channel="drp",
        verified=verified,
        actor=f"agent:{agent.id}",
        regime="ccpa" if drp.regime == "ccpa" else None,
    )
    drp.rights_request_id = request.id


def _opt_in(drp: DrpRequest, agent: Agent, email: str, verified: bool) -> None:
    """A consent to the sale and sharing of their information, given through the agent."""
    subject = subjects.by_email(email)
    member = (
        db.session.execute(select(Member).where(Member.subject_id == subject.id)).scalar()
        if subject is not None
        else None
    )
    if not verified:
        _deny(drp, "insuf_verification")
        return
    # Fulfilled either way, so the answer does not say whether the address is a member's:
    # someone Lethe holds nothing about has nothing to sell or share.
    drp.status = "fulfilled"
    if member is None:
        return
    records.upsert_consent(
        {
            "member_id": member.external_id,
            "consent_id": f"drp-{drp.id}",
            "purpose": SALE,
            "status": "granted",
            "notice_version": "drp",
            "channel": f"agent:{agent.id}",
            "granted_at": utcnow(),
        },
        source="drp",
        actor=f"agent:{agent.id}",
    )


def _subject_ref(drp: DrpRequest) -> str | None:
    if drp.rights_request_id is None:
        return None
    request = db.session.get(RightsRequest, drp.rights_request_id)
    subject = db.session.get(Subject, request.subject_id) if request else None
    return subject.ref if subject is not None else None


def get(request_id: str) -> DrpRequest | None:
    return db.session.get(DrpRequest, request_id) if len(request_id or "") <= 36 else None


def for_request(request: RightsRequest) -> DrpRequest | None:
    """The agent's filing a Lethe request came from, if it did."""
    return db.session.execute(
        select(DrpRequest).where(DrpRequest.rights_request_id == request.id)
    ).scalar_one_or_none()


def agent_name(request: RightsRequest) -> str | None:
    """The name of the agent that filed ``request`` for the person, if one did."""
    drp = for_request(request) if request.channel == "drp" else None
    agent = db.session.get(Agent, drp.agent_id) if drp is not None else None
    return agent.name if agent is not None else None


def revoke(drp: DrpRequest, agent: Agent) -> None:
    """The agent revokes the request on the person's behalf (flushes): while nothing final has
    happened and the right allows withdrawing it (an erasure under way does not). Raises
    :class:`InvalidTransition` otherwise."""
    status = status_of(drp)["status"]
    if status in FINAL:
        raise InvalidTransition(f"The request is {status} already.")
    request = db.session.get(RightsRequest, drp.rights_request_id)
    requests.withdraw(request, actor=f"agent:{agent.id}")
    drp.status = "revoked"
    queue_callback(drp)


def status_of(drp: DrpRequest) -> dict:
    """The protocol's status object (DRP 1.0 §3.03) as it stands now."""
    out: dict = {"request_id": drp.id, "received_at": _iso(drp.received_at)}
    if drp.agent_request_id:
        out["agent_request_id"] = drp.agent_request_id
    request = (
        db.session.get(RightsRequest, drp.rights_request_id) if drp.rights_request_id else None
    )
    if drp.status is not None and (request is None or drp.status == "revoked"):
        out["status"] = drp.status
        if drp.reason:
            out["reason"] = drp.reason
            out["processing_details"] = DETAILS[drp.reason]
        return out
    state = request.status
    out["expected_by"] = _iso(request.due_at)
    if state in (RequestStatus.RECEIVED, RequestStatus.AWAITING_VERIFICATION):
        out["status"], out["reason"] = "in_progress", "need_user_verification"
        # The request's own page (its reference is no credential: the page asks for the
        # emailed link, the one way in). Lethe's public address, as in its emails.
        # (No url_for: the worker sends callbacks outside any web request.)
        out["user_verification_url"] = (
            current_app.config["PUBLIC_URL"].rstrip("/") + f"/requests/{request.reference}"
        )
        out["processing_details"] = (
            "We have emailed the person a link to confirm the request is theirs."
        )
    elif state in (RequestStatus.OPEN, RequestStatus.IN_PROGRESS):
        out["status"] = "in_progress"
        if request.extended_at is not None:
            out["processing_details"] = "The deadline was extended once; the person was told why."
    elif state == RequestStatus.COMPLETED:
        out["status"] = "fulfilled"
        out["processing_details"] = "Done. The person has been sent the outcome directly."
    elif state == RequestStatus.REFUSED and request.verified_at is None:
        out["status"], out["reason"] = "denied", "insuf_verification"
        out["processing_details"] = DETAILS["insuf_verification_refused"]
    elif state == RequestStatus.REFUSED:
        out["status"], out["reason"] = "denied", "other"
        out["processing_details"] = DETAILS["other"]
    else:  # withdrawn
        out["status"] = "revoked"
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")  # "+00:00", never "Z"


# --- status callbacks -----------------------------------------------------------------------


def queue_callback(drp: DrpRequest) -> None:
    """Have the worker push the status to the agent, if it asked to be told (flushes); once
    per transaction, however many changes it made (the job sends the status as it is then)."""
    if not drp.status_callback:
        return
    queued = db.session.info.setdefault(_QUEUED, set())
    if drp.id in queued:
        return
    queued.add(drp.id)
    outbox.enqueue_job(CALLBACK_JOB, argument=drp.id)


_QUEUED = "lethe.drp_callbacks_queued"


@event.listens_for(Session, "after_transaction_end")
def _forget_queued(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_QUEUED, None)


_MOVED = CommitNotes("lethe.drp_moved")


@event.listens_for(Session, "after_flush")
def _note_moves(session, flush_context) -> None:
    """A Lethe request moved (an event was written for it): its agent is told at commit."""
    for obj in session.new:
        if isinstance(obj, RequestEvent):
            _MOVED.note(session, obj.request_id)


@event.listens_for(Session, "before_commit")
def _tell_agents(session) -> None:
    if session.get_nested_transaction() is not None:
        return
    moved = set(_MOVED.take(session))
    if not moved:
        return
    for drp in session.execute(
        select(DrpRequest).where(
            DrpRequest.rights_request_id.in_(moved), DrpRequest.status_callback.is_not(None)
        )
    ).scalars():
        queue_callback(drp)
    session.flush()


def callback_steps(drp_id: str) -> Steps[None]:
    """The outbox's job: POST the request's current status to the agent's callback, unless
    that very status was sent already. A failure raises: the outbox retries with backoff."""
    drp = get(drp_id)
    if drp is None or not drp.status_callback:
        return
    agent = db.session.get(Agent, drp.agent_id)
    if agent is None or not agent.active:
        return  # removed: Lethe no longer talks to it
    body = json.dumps(status_of(drp), sort_keys=True, separators=(",", ":"))
    if body == drp.last_sent:
        return
    target = check_target(drp.status_callback)
    message_id = f"msg_{secrets.token_hex(12)}"
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign_callback(message_id, timestamp, body),
    }
    yield  # nothing held while the agent answers
    timeout = current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", 10)
    status = outbound_http.post(target, body.encode(), headers, timeout)
    if not 200 <= status < 300:
        raise CallbackFailed(f"the agent answered {status}")
    drp = get(drp_id)
    drp.last_sent = body


def sign_callback(message_id: str, timestamp: str, body: str) -> str:
    """Standard Webhooks' asymmetric signature: ``v1a,<base64 Ed25519 signature of
    "id.timestamp.body">`` with Lethe's current signing key (published in discovery and in
    the JWKS)."""
    key = signing.ed25519_private_key(signing.current_key())
    signature = key.sign(f"{message_id}.{timestamp}.{body}".encode())
    return "v1a," + base64.b64encode(signature).decode()


def callback_verify_key() -> str:
    """The public key agents verify callbacks with: Standard Webhooks' ``whpk_`` form."""
    return "whpk_" + base64.b64encode(signing.raw_public_key(signing.current_key())).decode()
