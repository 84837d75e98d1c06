"""What the subject is told, and when. Each notice is queued in the outbox (never sent inline)
in the same transaction as the change it reports.

A notice gives the answer first, in plain words, and the legal detail after it. A completion
notice says what the request changed — each record named by what it is (the perk and its
brand, never an internal id or a raw status value) — in lines its right's handler gives
(:meth:`~rights.lifecycle.handlers.RightHandler.outcome`, in the words of
:mod:`rights.lifecycle.outcomes`, records named by :mod:`rights.holdings.names`). A link in a
notice that leads to the request is a fresh single-use link (:mod:`rights.lifecycle.verification`),
minted as the notice is written, so that it opens the request's page at once: no second email
to ask for one.
"""

import re

from flask import current_app
from sqlalchemy import select

from rights.delivery import outbox
from rights.lifecycle import verification as single_use
from rights.lifecycle.registry import handler_for
from storage import vault
from storage.db import db
from storage.models import OutboxMessage, RightsRequest


def _right(request: RightsRequest) -> str:
    """How the notice names the right asked for ("your request for <this>"): the right's
    handler says, so that a right added later is named without an edit here."""
    return handler_for(request.type).name


def _url(path: str) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def _date(dt) -> str:
    return dt.strftime("%d %B %Y")


def remedies_text() -> str:
    """Art. 12(4): the right to complain and to a judicial remedy, in every refusal."""
    authority = current_app.config["SUPERVISORY_AUTHORITY"]
    return (
        "You have the right to lodge a complaint with a supervisory authority, in particular in "
        f"the country where you live or work or where you think the law was broken ({authority}), "
        "and the right to an effective judicial remedy before the courts against us (Arts. 77 "
        "and 79 GDPR)."
    )


def _reason(request: RightsRequest, column: str) -> str | None:
    return vault.decrypt(request.subject_id, f"rights_requests.{column}", getattr(request, column))


def _send(
    request: RightsRequest, topic: str, title: str, body: str, sealed_with: str = "subject"
) -> None:
    to = vault.decrypt(request.subject_id, "rights_requests.contact_enc", request.contact_enc)
    if not to:
        return
    footer = (
        f"\n\nYour request reference: {request.reference}\n"
        f"Questions: {current_app.config['CONTROLLER_CONTACT']}\n"
        f"{current_app.config['PLATFORM_NAME']} privacy team, for "
        f"{current_app.config['CONTROLLER_NAME']}"
    )
    outbox.enqueue_email(
        subject_id=request.subject_id,
        to=to,
        title=f"[{request.reference}] {title}",
        body=body + footer,
        topic=topic,
        request_id=request.id,
        sealed_with=sealed_with,
    )


def verification(request: RightsRequest, token: str) -> None:
    hours = current_app.config["VERIFICATION_TTL_HOURS"]
    _send(
        request,
        "notice.verify",
        "Please confirm your request",
        f"We received a request for {_right(request)}.\n\n"
        f"To confirm it was you, open this link and press 'Confirm' within {hours} hours:\n"
        f"{_url('/verify/' + token)}\n\n"
        "If you did not ask for this, ignore this email: nothing will happen.",
    )


def asked_before(request: RightsRequest) -> str | None:
    """When the request was linked to an earlier one of the person's (asked again for the
    same thing): the sentence that says so, in the confirmation email and on the request's
    page (rights.reports.request_page)."""
    earlier = request.linked_to
    if earlier is None:
        return None
    when = f"{earlier.received_at.day} {earlier.received_at:%B}"
    return (
        f"You already asked us this on {when} ({earlier.reference}); we will answer both together."
    )


def received(request: RightsRequest) -> None:
    again = asked_before(request)
    _send(
        request,
        "notice.received",
        "We received your request",
        f"We received your request for {_right(request)} on "
        f"{_date(request.received_at)}. We will answer by {_date(request.due_at)}."
        + (f"\n\n{again}" if again else ""),
    )


def resume_link(request: RightsRequest, token: str) -> None:
    _send(
        request,
        "notice.resume",
        "Your link to your request",
        "Open this link and press 'Continue' to see your request and its downloads:\n"
        f"{_url('/resume/' + token)}\n\nIf you did not ask for this link, ignore this email.",
    )


def _page_link(request: RightsRequest) -> str:
    """A fresh single-use link to the request's page (it lives as long as a confirmation
    link: see :mod:`rights.lifecycle.verification`), and what to do once it has gone."""
    hours = current_app.config["VERIFICATION_TTL_HOURS"]
    token = single_use.issue(request, "resume")
    return (
        f"{_url('/resume/' + token)}\n"
        f"The link works once, within {hours} hours; after that it takes you to a page where "
        "you can ask for a new one."
    )


def _lines(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def completed_with_download(request: RightsRequest, token: str) -> None:
    what = handler_for(request.type).download_noun
    _send(
        request,
        "notice.completed",
        f"Your {what} is ready",
        f"Your {what} is ready. Open this link and press 'Continue' to see it:\n"
        f"{_url('/resume/' + token)}\n\n"
        f"Downloads stay available until {_date(request.downloads_expire_at)}.",
    )


def completed(request: RightsRequest) -> None:
    """Done: what changed, in words (the right's handler says), then the link to the
    request's page, then the remedies."""
    changed = handler_for(request.type).outcome(request)
    body = f"We have completed your request for {_right(request)}."
    if changed:
        body += (
            f"\n\nWhat changed:\n{_lines(changed)}\n\n"
            "Anyone we passed these records to is told of the change, as the law requires "
            "(Art. 19 GDPR). Your request's page shows who, and whether each has confirmed."
        )
    _send(
        request,
        "notice.completed",
        "We have done what you asked",
        body
        + "\n\nTo see your request's page, open this link and press 'Continue':\n"
        + _page_link(request)
        + "\n\nIf you think we got something wrong, reply to this email. "
        + remedies_text(),
    )


def erased(request: RightsRequest, record_key: str, receipt: str) -> None:
    """The last message to an erased person: sealed with the service key (theirs is about to
    be destroyed) and wiped from the outbox once sent. What was kept, until when and why, is
    the erasure handler's to say (from the receipt)."""
    kept = handler_for(request.type).outcome(request)
    what_kept = (
        "What we kept, until when, and why (each is set apart and used for nothing else; on "
        "that date it is deleted, or stripped of anything that could name you):\n"
        f"{_lines(kept)}"
        if kept
        else "We kept nothing about you beyond this request."
    )
    _send(
        request,
        "notice.erased",
        "Your data has been erased",
        f"We have erased your data.\n\n{what_kept}\n\n"
        f"Your record key: {record_key}\n\n"
        "Keep it somewhere safe. We do not keep it (only a fingerprint of it), and it is the "
        "only way back: enter it at "
        f"{_url('/records')} at any time to get a signed statement of what we still hold "
        "about your perks and disclosures.\n\n"
        "To see your request's page, with your receipt and who we told of the erasure, open "
        f"this link and press 'Continue':\n{_page_link(request)}\n\n"
        "Your signed deletion receipt (a JWS; verify it against "
        f"{_url('/.well-known/jwks.json')}):\n{receipt}\n",
        sealed_with="service",
    )


def extended(request: RightsRequest) -> None:
    _send(
        request,
        "notice.extended",
        "We need more time to answer your request",
        f"We need more time to answer your request for {_right(request)}.\n\n"
        f"Why: {_reason(request, 'extension_reason_enc')}\n\n"
        f"We will now answer by {_date(request.due_at)} "
        "(Art. 12(3) GDPR allows up to two further months for complex or numerous requests).\n\n"
        + remedies_text(),
    )


def _lifting(restriction_ends) -> str:
    """Art. 18(3): the subject is told before a restriction is lifted."""
    if restriction_ends is None:
        return ""
    return (
        "\n\nThe records you named have been held back (not used or passed on) while your "
        f"request was open. That hold ends on {restriction_ends.strftime('%d %B %Y at %H:%M UTC')}."
    )


def refused(request: RightsRequest, restriction_ends=None) -> None:
    _send(
        request,
        "notice.refused",
        "We cannot do what you asked",
        f"We have decided not to act on your request for {_right(request)}.\n\n"
        f"Why: {_reason(request, 'decision_reason_enc')}"
        + _lifting(restriction_ends)
        + "\n\n"
        + remedies_text(),
    )


def withdrawn(request: RightsRequest, restriction_ends=None) -> None:
    _send(
        request,
        "notice.withdrawn",
        "Your request was withdrawn",
        f"Your request for {_right(request)} was withdrawn as you asked. "
        "You can make a new request at any time." + _lifting(restriction_ends),
    )


def information_requested(request: RightsRequest, question: str, token: str) -> None:
    _send(
        request,
        "notice.information_requested",
        "We need something from you to answer your request",
        f"To answer your request for {_right(request)}, we need to ask you:\n\n"
        f"{question}\n\n"
        "Open this link and press 'Continue', then write your answer on your request's page:\n"
        f"{_url('/resume/' + token)}\n\n"
        f"We still owe you an answer by {_date(request.due_at)}.",
    )


def history(request: RightsRequest) -> list[dict]:
    """The notices queued for this request, oldest first, with their text where it can still
    be read (not once the subject's key is destroyed, nor the wiped last message)."""
    rows = db.session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.request_id == request.id, OutboxMessage.kind == "email")
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    ).scalars()
    out = []
    for msg in rows:
        payload, withheld = None, None
        if msg.sealed_with != "subject":
            # The last message to an erased person carries their record key: for them only.
            withheld = "Not shown: it carries the subject's record key, which only they hold."
        else:
            try:
                payload = vault.decrypt_json(msg.subject_id, "outbox.payload_enc", msg.payload_enc)
            except vault.KeyMissing:
                withheld = "No longer readable: the subject was erased."
        out.append(
            {
                "topic": msg.topic,
                "queued_at": msg.created_at,
                "status": msg.status,
                "sent_at": msg.sent_at,
                "title": payload["subject"] if payload else TITLES.get(msg.topic, msg.topic),
                "body": redact(payload["body"]) if payload else None,
                "withheld": withheld,
            }
        )
    return out


# A link in a notice is a credential for the subject's request (it confirms it, or opens its
# downloads): officers see that a link was sent, never the link itself.
_LINK = re.compile(r"(/(?:verify|resume)/)[A-Za-z0-9_\-]+")


def redact(body: str) -> str:
    return _LINK.sub(r"\1[the subject's personal link, not shown]", body)


TITLES = {"notice.erased": "Your data has been erased"}


def restriction_lifting(request: RightsRequest, reason: str, ends) -> None:
    """Art. 18(3): told before the restriction is lifted, with the date it ends."""
    _send(
        request,
        "notice.restriction_lifting",
        "We will stop holding your records back",
        f"The records you asked us to hold back (request for {_right(request)}) "
        f"will be used again from {ends.strftime('%d %B %Y at %H:%M UTC')}.\n\n"
        f"Why: {reason}\n\n"
        "If you disagree, reply before then. " + remedies_text(),
    )
