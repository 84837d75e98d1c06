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

Every notice is written in the language its request was filed in (``RightsRequest.locale``;
English when it has none): its title, its body and its footer, dates included
(:func:`storage.wording.in_language`). The officers' view of the notices sent
(:func:`history`) stays in English.
"""

import functools
import re

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from rights.delivery import outbox
from rights.lifecycle import verification as single_use
from rights.lifecycle.registry import handler_for
from storage import vault, wording
from storage.db import db
from storage.models import OutboxMessage, RightsRequest


def _in_request_language(notice):
    """Write the whole of ``notice`` (a function of the request first) — title, body, footer
    and dates — in the language the request was filed in."""

    @functools.wraps(notice)
    def written(request: RightsRequest, *args, **kwargs):
        with wording.in_language(request.locale):
            return notice(request, *args, **kwargs)

    return written


def _right(request: RightsRequest) -> str:
    """How the notice names the right asked for ("your request for <this>"): the right's
    handler says (in English, marked for the catalogue), so that a right added later is named
    without an edit here."""
    return _(handler_for(request.type).name)


def _url(path: str) -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/") + path


def _date(dt) -> str:
    return wording.long_date(dt)


def remedies_text() -> str:
    """Art. 12(4): the right to complain and to a judicial remedy, in every refusal."""
    # The default authority is a phrase in the catalogue (config.py); a name stays as is.
    authority = current_app.config["SUPERVISORY_AUTHORITY"]
    return _(
        "You have the right to lodge a complaint with a supervisory authority, in particular in "
        "the country where you live or work or where you think the law was broken "
        "(%(authority)s), and the right to an effective judicial remedy before the courts "
        "against us (Arts. 77 and 79 GDPR).",
        authority=_(authority),
    )


def _reason(request: RightsRequest, column: str) -> str | None:
    return vault.decrypt(request.subject_id, f"rights_requests.{column}", getattr(request, column))


def _send(
    request: RightsRequest, topic: str, title: str, body: str, sealed_with: str = "subject"
) -> None:
    to = vault.decrypt(request.subject_id, "rights_requests.contact_enc", request.contact_enc)
    if not to:
        return
    config = current_app.config
    footer = (
        "\n\n"
        + _("Your request reference: %(reference)s", reference=request.reference)
        + "\n"
        + _("Questions: %(contact)s", contact=config["CONTROLLER_CONTACT"])
        + "\n"
        + _(
            "%(platform)s privacy team, for %(controller)s",
            platform=config["PLATFORM_NAME"],
            controller=config["CONTROLLER_NAME"],
        )
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


@_in_request_language
def verification(request: RightsRequest, token: str) -> None:
    hours = current_app.config["VERIFICATION_TTL_HOURS"]
    _send(
        request,
        "notice.verify",
        _("Please confirm your request"),
        _("We received a request for %(right)s.", right=_right(request))
        + "\n\n"
        + ngettext(
            "To confirm it was you, open this link and press 'Confirm' within %(num)d hour:",
            "To confirm it was you, open this link and press 'Confirm' within %(num)d hours:",
            hours,
        )
        + "\n"
        + _url("/verify/" + token)
        + "\n\n"
        + _("If you did not ask for this, ignore this email: nothing will happen."),
    )


def asked_before(request: RightsRequest) -> str | None:
    """When the request was linked to an earlier one of the person's (asked again for the
    same thing): the sentence that says so, in the confirmation email and on the request's
    page (rights.reports.request_page), in the language being written."""
    earlier = request.linked_to
    if earlier is None:
        return None
    return _(
        "You already asked us this on %(date)s (%(reference)s); we will answer both together.",
        date=wording.day_and_month(earlier.received_at),
        reference=earlier.reference,
    )


@_in_request_language
def received(request: RightsRequest) -> None:
    again = asked_before(request)
    _send(
        request,
        "notice.received",
        _("We received your request"),
        _(
            "We received your request for %(right)s on %(received)s. We will answer by %(due)s.",
            right=_right(request),
            received=_date(request.received_at),
            due=_date(request.due_at),
        )
        + (f"\n\n{again}" if again else ""),
    )


@_in_request_language
def resume_link(request: RightsRequest, token: str) -> None:
    _send(
        request,
        "notice.resume",
        _("Your link to your request"),
        _("Open this link and press 'Continue' to see your request and its downloads:")
        + "\n"
        + _url("/resume/" + token)
        + "\n\n"
        + _("If you did not ask for this link, ignore this email."),
    )


def _page_link(request: RightsRequest) -> str:
    """A fresh single-use link to the request's page (it lives as long as a confirmation
    link: see :mod:`rights.lifecycle.verification`), and what to do once it has gone."""
    hours = current_app.config["VERIFICATION_TTL_HOURS"]
    token = single_use.issue(request, "resume")
    return (
        _url("/resume/" + token)
        + "\n"
        + ngettext(
            "The link works once, within %(num)d hour; after that it takes you to a page where "
            "you can ask for a new one.",
            "The link works once, within %(num)d hours; after that it takes you to a page where "
            "you can ask for a new one.",
            hours,
        )
    )


def _lines(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


@_in_request_language
def completed_with_download(request: RightsRequest, token: str) -> None:
    what = _(handler_for(request.type).download_noun)
    _send(
        request,
        "notice.completed",
        _("Your %(what)s is ready", what=what),
        _("Your %(what)s is ready. Open this link and press 'Continue' to see it:", what=what)
        + "\n"
        + _url("/resume/" + token)
        + "\n\n"
        + _(
            "Downloads stay available until %(date)s.",
            date=_date(request.downloads_expire_at),
        ),
    )


@_in_request_language
def completed(request: RightsRequest) -> None:
    """Done: what changed, in words (the right's handler says), then the link to the
    request's page, then the remedies."""
    changed = handler_for(request.type).outcome(request)
    body = _("We have completed your request for %(right)s.", right=_right(request))
    if changed:
        body += (
            "\n\n"
            + _("What changed:")
            + "\n"
            + _lines(changed)
            + "\n\n"
            + _(
                "Anyone we passed these records to is told of the change, as the law requires "
                "(Art. 19 GDPR). Your request's page shows who, and whether each has confirmed."
            )
        )
    _send(
        request,
        "notice.completed",
        _("We have done what you asked"),
        body
        + "\n\n"
        + _("To see your request's page, open this link and press 'Continue':")
        + "\n"
        + _page_link(request)
        + "\n\n"
        + _("If you think we got something wrong, reply to this email.")
        + " "
        + remedies_text(),
    )


@_in_request_language
def erased(request: RightsRequest, record_key: str, receipt: str) -> None:
    """The last message to an erased person: sealed with the service key (theirs is about to
    be destroyed) and wiped from the outbox once sent. What was kept, until when and why, is
    the erasure handler's to say (from the receipt)."""
    kept = handler_for(request.type).outcome(request)
    what_kept = (
        _(
            "What we kept, until when, and why (each is set apart and used for nothing else; "
            "on that date it is deleted, or stripped of anything that could name you):"
        )
        + "\n"
        + _lines(kept)
        if kept
        else _("We kept nothing about you beyond this request.")
    )
    _send(
        request,
        "notice.erased",
        _("Your data has been erased"),
        _("We have erased your data.")
        + "\n\n"
        + what_kept
        + "\n\n"
        + _("Your record key: %(key)s", key=record_key)
        + "\n\n"
        + _(
            "Keep it somewhere safe. We do not keep it (only a fingerprint of it), and it is "
            "the only way back: enter it at %(url)s at any time to get a signed statement of "
            "what we still hold about your perks and disclosures.",
            url=_url("/records"),
        )
        + "\n\n"
        + _(
            "To see your request's page, with your receipt and who we told of the erasure, "
            "open this link and press 'Continue':"
        )
        + "\n"
        + _page_link(request)
        + "\n\n"
        + _(
            "Your signed deletion receipt (a JWS; verify it against %(url)s):",
            url=_url("/.well-known/jwks.json"),
        )
        + f"\n{receipt}\n",
        sealed_with="service",
    )


@_in_request_language
def extended(request: RightsRequest) -> None:
    _send(
        request,
        "notice.extended",
        _("We need more time to answer your request"),
        _("We need more time to answer your request for %(right)s.", right=_right(request))
        + "\n\n"
        + _("Why: %(reason)s", reason=_reason(request, "extension_reason_enc"))
        + "\n\n"
        + (
            _(
                "We will now answer by %(date)s (the CCPA allows one further 45 days when "
                "they are reasonably necessary).",
                date=_date(request.due_at),
            )
            if request.regime == "ccpa"
            else _(
                "We will now answer by %(date)s (Art. 12(3) GDPR allows up to two further "
                "months for complex or numerous requests).",
                date=_date(request.due_at),
            )
        )
        + "\n\n"
        + remedies_text(),
    )


def _lifting(restriction_ends) -> str:
    """Art. 18(3): the subject is told before a restriction is lifted."""
    if restriction_ends is None:
        return ""
    return "\n\n" + _(
        "The records you named have been held back (not used or passed on) while your "
        "request was open. That hold ends on %(when)s.",
        when=wording.date_and_time(restriction_ends),
    )


@_in_request_language
def refused(request: RightsRequest, restriction_ends=None) -> None:
    _send(
        request,
        "notice.refused",
        _("We cannot do what you asked"),
        _("We have decided not to act on your request for %(right)s.", right=_right(request))
        + "\n\n"
        + _("Why: %(reason)s", reason=_reason(request, "decision_reason_enc"))
        + _lifting(restriction_ends)
        + "\n\n"
        + remedies_text(),
    )


@_in_request_language
def withdrawn(request: RightsRequest, restriction_ends=None) -> None:
    _send(
        request,
        "notice.withdrawn",
        _("Your request was withdrawn"),
        _("Your request for %(right)s was withdrawn as you asked.", right=_right(request))
        + " "
        + _("You can make a new request at any time.")
        + _lifting(restriction_ends),
    )


@_in_request_language
def information_requested(request: RightsRequest, question: str, token: str) -> None:
    _send(
        request,
        "notice.information_requested",
        _("We need something from you to answer your request"),
        _("To answer your request for %(right)s, we need to ask you:", right=_right(request))
        + f"\n\n{question}\n\n"
        + _("Open this link and press 'Continue', then write your answer on your request's page:")
        + "\n"
        + _url("/resume/" + token)
        + "\n\n"
        + _("We still owe you an answer by %(date)s.", date=_date(request.due_at)),
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


@_in_request_language
def restriction_lifting(request: RightsRequest, reason: str, ends) -> None:
    """Art. 18(3): told before the restriction is lifted, with the date it ends."""
    _send(
        request,
        "notice.restriction_lifting",
        _("We will stop holding your records back"),
        _(
            "The records you asked us to hold back (request for %(right)s) will be used again "
            "from %(when)s.",
            right=_right(request),
            when=wording.date_and_time(ends),
        )
        + "\n\n"
        + _("Why: %(reason)s", reason=reason)
        + "\n\n"
        + _("If you disagree, reply before then.")
        + " "
        + remedies_text(),
    )
