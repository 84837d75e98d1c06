"""A request's own page, for the browser its link was confirmed in: status, receipt, questions
and answers, the records a correction is about, withdrawing, and the pictures sent with it."""

from datetime import datetime

from flask import Response, abort, current_app, flash, redirect, render_template, url_for
from flask import request as http
from flask_babel import gettext as _
from flask_babel import ngettext

from rights.agents import drp_requests
from rights.erasure import erasure, receipts
from rights.errors import InvalidTransition, RightsError
from rights.holdings import restrictions
from rights.lifecycle import evidence, requests
from rights.lifecycle.registry import handler_for
from rights.reports import request_page
from storage import wording
from storage.clock import utcnow
from web.actions import attempt
from web.extensions import limiter
from web.public import bp, limit, no_store, own_request
from web.public.forms import AnswerForm, EmptyForm
from web.transaction import keep_changes


@bp.get("/requests/<reference>")
def request_status(reference: str, answer_form=None, status=200):
    answer_form = answer_form or AnswerForm()
    req = own_request(reference)
    if req is None:
        # Same page for unknown references and for ones this browser may not see.
        return render_template("public/request_locked.html", reference=reference, form=EmptyForm())
    page = request_page.for_subject(req)
    record_key = erasure.reveal_record_key(page.receipt) if page.receipt else None
    if record_key:
        keep_changes()  # shown once, whatever the answer: the sealed copy is gone now
    return render_template(
        "public/request.html",
        **vars(page),
        record_key=record_key,
        unreadable=_unreadable_in_words(page.unrecoverable) if page.receipt else None,
        in_log=receipts.log_placement(page.receipt) if page.receipt else None,
        agent=drp_requests.agent_name(req),
        answer_form=answer_form if page.awaiting_answer else None,
        form=EmptyForm(),
        now=utcnow(),
        # Work under way on its own (an erasure being carried out): the page reloads itself,
        # but never away from a record key shown this once.
        running=not record_key and handler_for(req.type).running(req),
    ), status


def _unreadable_in_words(state: dict) -> str:
    """When no copy of the person's data can be read any more, said as a person would."""
    if state["unrecoverable"]:
        return _(
            "The key that opened your data has been destroyed: no copy of it anywhere — not "
            "in our backups either — can be read by anyone, us included."
        )
    when = state["unrecoverable_after"]
    if not when:
        return ""
    at = datetime.fromisoformat(when)
    now = utcnow()
    if at <= now:
        return _(
            "Copies of your data in our backups and logs are encrypted, and the key that opens "
            "them is being destroyed now: once that is done, no copy anywhere can be read by "
            "anyone, us included."
        )
    time = f"{at:%H:%M}"
    if at.date() == now.date():
        return _(
            "Copies of your data in our backups and logs are encrypted, and the key that opens "
            "them is destroyed soon after today at %(time)s UTC, when we change keys: from "
            "then on no copy anywhere can be read by anyone, us included.",
            time=time,
        )
    if (at.date() - now.date()).days == 1:
        return _(
            "Copies of your data in our backups and logs are encrypted, and the key that opens "
            "them is destroyed soon after tomorrow at %(time)s UTC, when we change keys: from "
            "then on no copy anywhere can be read by anyone, us included.",
            time=time,
        )
    return _(
        "Copies of your data in our backups and logs are encrypted, and the key that opens "
        "them is destroyed soon after %(date)s at %(time)s UTC, when we change keys: from "
        "then on no copy anywhere can be read by anyone, us included.",
        date=wording.long_date(at),
        time=time,
    )


def _back(reference: str):
    return redirect(url_for("public.request_status", reference=reference), code=303)


@bp.post("/requests/<reference>/records")
@limiter.limit(limit)
def request_point_at(reference: str):
    req = own_request(reference)
    if req is None or not EmptyForm().validate_on_submit():
        abort(404)
    held = attempt(lambda: requests.point_at(req, http.form.getlist("record")), flash_error=True)
    if held:
        flash(
            ngettext(
                "Thank you: %(num)d record(s) are now held back (not used or passed on) "
                "until we decide.",
                "Thank you: %(num)d record(s) are now held back (not used or passed on) "
                "until we decide.",
                held.value,
            )
        )
    return _back(reference)


@bp.post("/requests/<reference>/answer")
@limiter.limit(limit)
def request_answer(reference: str):
    req = own_request(reference)
    if req is None:
        abort(404)
    form = AnswerForm()
    if not form.validate_on_submit():
        return request_status(reference, answer_form=form, status=422)
    answered = attempt(
        lambda: requests.answer_information(req, answer=form.answer.data),
        flash_error=True,
        catch=InvalidTransition,
    )
    if answered:
        flash(_("Thank you: your answer was sent to the officer handling your request."))
    return _back(reference)


@bp.post("/requests/<reference>/link")
@limiter.limit(limit)
def request_link(reference: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    # Looked up by the worker, not here: this answer costs the same whether or not it exists.
    requests.ask_for_resume_link(reference)
    flash(
        _(
            "If this reference exists, we will email a new link to the address on the request "
            "within a few minutes (at most one an hour)."
        )
    )
    return _back(reference)


@bp.get("/requests/<reference>/confirm-withdrawal")
def request_withdraw_confirm(reference: str):
    """The question before a withdrawal — "Withdraw this request?" — with what withdrawing
    means for this request; its button posts to /withdraw, which does it."""
    req = own_request(reference)
    if req is None:
        abort(404)
    if req.status in requests.TERMINAL:
        return _back(reference)
    allowed = attempt(
        lambda: handler_for(req.type).check_withdrawal(req, by_platform=False),
        flash_error=True,
        catch=InvalidTransition,
    )
    if not allowed:
        return _back(reference)
    return render_template(
        "public/withdraw.html",
        req=req,
        right=handler_for(req.type).name,
        holds_back=restrictions.held_open(req),
        notice_hours=current_app.config["RESTRICTION_LIFT_NOTICE_HOURS"],
        form=EmptyForm(),
    )


@bp.post("/requests/<reference>/withdraw")
def request_withdraw(reference: str):
    req = own_request(reference)
    if req is None or not EmptyForm().validate_on_submit():
        abort(404)
    withdrawn = attempt(
        lambda: requests.withdraw(req, actor="subject"), flash_error=True, catch=InvalidTransition
    )
    if withdrawn:
        flash(_("Your request was withdrawn."))
    return _back(reference)


@bp.get("/requests/<reference>/evidence/<int(max=2147483647):attachment_id>")
def request_evidence(reference: str, attachment_id: int):
    """A picture the subject sent with their request: to them alone (their verified browser).
    ``?inline=1`` shows it in the page (its thumbnail) rather than downloading it; the same
    checks and the same audit row either way."""
    req = own_request(reference)
    if req is None:
        abort(404)
    try:
        media_type, content = evidence.read(req, attachment_id, actor="subject")
    except RightsError:
        abort(404)
    name = evidence.filename(attachment_id, media_type)
    resp = no_store(Response(content, mimetype=media_type), name)
    if http.args.get("inline") == "1":
        # Only re-encoded JPEG, PNG or WebP is stored (evidence.check_picture), served nosniff.
        resp.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return resp
