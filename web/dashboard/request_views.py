"""A request: its facts, timeline, notices and evidence; its records with provenance; and the
officer's actions, each on its own confirmation page that says what will happen."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    stream_template,
    url_for,
)
from flask import request as http

from rights.access import access
from rights.agents import drp_requests
from rights.errors import InvalidTransition, NotFound
from rights.ledger import audit, officers
from rights.lifecycle import evidence, notices, requests
from rights.recipients import told
from rights.reports import queue
from rights.reports import request_page as request_page_model
from storage.clock import utcnow
from storage.models import RequestStatus, RightsRequest
from storage.recipients import RECIPIENTS
from web.actions import attempt
from web.dashboard import actor, bp, deny, me, requires
from web.dashboard import forms as f

S = RequestStatus


def _load(request_id: str) -> RightsRequest:
    try:
        return requests.get(request_id)
    except NotFound:
        abort(404)


@dataclass(frozen=True)
class Action:
    title: str
    button: str
    form: type
    run: Callable[[RightsRequest, object, str], None]
    done: str
    consequences: str
    danger: bool = False


ACTIONS = {
    "verify": Action(
        "Verify identity manually",
        "Confirm identity",
        f.VerifyForm,
        lambda r, form, who: requests.verify_manually(r, reason=form.reason.data, actor=who),
        "Identity confirmed; the request is open.",
        "The request opens as if the emailed link had been confirmed, and the subject is told "
        "it was received. Access and portability are then answered at once; an erasure starts.",
    ),
    "approve": Action(
        "Approve and carry out",
        "Approve",
        f.ApproveForm,
        lambda r, form, who: requests.approve(
            r, actor=who, note=form.note.data, profile=_profile_values(r)
        ),
        "Approved.",
        "Access and portability are answered from the data map and the subject gets the "
        "download link; an erasure is queued for the worker; any other right is recorded as "
        "granted and the subject is told it is done.",
    ),
    "refuse": Action(
        "Refuse",
        "Refuse the request",
        f.RefuseForm,
        lambda r, form, who: requests.refuse(r, reason=form.reason.data, actor=who),
        "Refused; the subject has been told why and how to complain.",
        "The request closes as refused. The subject is sent your reason, with their right to "
        "complain to a supervisory authority and to a judicial remedy (Art. 12(4)).",
        danger=True,
    ),
    "extend": Action(
        "Extend the deadline",
        "Extend",
        f.ExtendForm,
        lambda r, form, who: requests.extend(
            r, months=int(form.months.data), reason=form.reason.data, actor=who
        ),
        "Deadline extended; the subject has been told why.",
        "Once per request, within its first month: the deadline moves by one or two months "
        "(three in all at most) and the subject is sent your reason (Art. 12(3)).",
    ),
    "lift": Action(
        "Lift the restriction",
        "Lift after notice",
        f.LiftForm,
        lambda r, form, who: requests.lift(r, reason=form.reason.data, actor=who),
        "The subject is told; the records are used again after the notice period.",
        "The subject is sent your reason and the date the hold ends, which is the notice "
        "period from now (Art. 18(3)); until then the records stay held back.",
        danger=True,
    ),
    "ask": Action(
        "Ask the subject for information",
        "Send the question",
        f.AskForm,
        lambda r, form, who: requests.ask_for_information(
            r, question=form.question.data, actor=who
        ),
        "Question sent.",
        "The subject is emailed your question and a link to their request page, where they "
        "answer. The deadline does not move.",
    ),
    "cancel": Action(
        "Cancel at the subject's request",
        "Cancel the request",
        f.CancelForm,
        lambda r, form, who: requests.cancel(r, reason=form.reason.data, actor=who),
        "Cancelled; the subject has been told.",
        "The request closes as withdrawn, as if the subject had withdrawn it themselves, and "
        "they are sent the same notice. An erasure already running cannot be cancelled.",
        danger=True,
    ),
}


def _profile_values(req: RightsRequest) -> dict:
    """The corrected profile values the officer typed (one input per contested field)."""
    return {k: http.form.get(f"profile.{k}", "")[:500] for k in requests.profile_fields(req)}


def _may_act(req: RightsRequest) -> str | None:
    return officers.may_decide(me(), req)


def _assignable():
    return f.choices(
        ("", "— nobody —"),
        *(
            (str(o.id), o.display_name)
            for o in officers.all_officers()
            if officers.allowed(o, "requests.decide")
        ),
    )


@bp.get("/requests/<request_id>")
@requires("requests.read")
def request_page(request_id: str):
    return _request_page(_load(request_id))


def _request_page(req: RightsRequest, notice_forms: dict | None = None) -> str:
    """The request's page; ``notice_forms``: Art. 19 forms sent back with what to fix."""
    page = request_page_model.for_officer(
        req, deliveries_page=min(max(http.args.get("page", 1, type=int), 1), 10**6)
    )
    audit.record(
        actor(), "request.viewed", subject_ref=page.subject_ref, target=f"request:{req.id}"
    )
    assign = f.AssignForm()
    assign.officer.choices = _assignable()
    assign.officer.data = str(req.assignee_id or "")
    return render_template(
        "dashboard/request.html",
        **vars(page),
        why_not=_may_act(req),
        actions=[(k, a) for k, a in ACTIONS.items() if k in page.allowed_actions],
        assign=assign,
        can_assign_others=officers.allowed(me(), "requests.assign_others"),
        form=f.ConfirmForm(),
        confirm=f.ConfirmForm(),
        subscriber=None,
        page_url=lambda n: url_for("dashboard.request_page", request_id=req.id, page=n),
        notice_forms=_notice_forms(page.told, notice_forms or {}),
        agent=drp_requests.agent_name(req),
    )


def _notice_forms(who: dict | None, given: dict) -> dict:
    """A form for each recipient the data map names that no webhook has told: filled with
    what was recorded, when something was (to correct it)."""
    forms = {}
    for r in who["recipients"] if who else []:
        key = r["recipient"]
        if key is None or not r["required"] or r["state"] in ("confirmed", "delivered"):
            continue
        if key in given:
            forms[key] = given[key]
            continue
        notice = r["notice"]
        data = {"how": notice["how"], "told_on": _day(notice["told_at"])} if notice else None
        forms[key] = f.RecipientNoticeForm(prefix=key, formdata=None, data=data)
    return forms


def _day(iso: str):
    return datetime.fromisoformat(iso).date()


@bp.post("/requests/<request_id>/told/<recipient>")
@requires("requests.decide")
def request_notice(request_id: str, recipient: str):
    """Record that a recipient was told of the request by hand (Art. 19), or correct what was
    recorded: how, when, and the signed-in officer as who."""
    req = _load(request_id)
    why_not = _may_act(req)
    if why_not:
        deny(why_not, target=f"request:{req.id}")
    if recipient not in RECIPIENTS:
        abort(404)
    form = f.RecipientNoticeForm(prefix=recipient)
    if form.validate_on_submit():
        done = attempt(
            lambda: told.record_notice(
                req,
                recipient,
                how=form.how.data,
                told_on=form.told_on.data,
                recorded_by=me().display_name,
                actor=actor(),
            ),
            form=form,
        )
        if done:
            flash(f"Recorded: {RECIPIENTS[recipient].name} was told.")
            return redirect(
                url_for("dashboard.request_page", request_id=req.id, _anchor="told"), code=303
            )
        req = _load(request_id)  # as it was before the refused record
    return _request_page(req, {recipient: form}), 422


@bp.post("/requests/<request_id>/told/<recipient>/withdraw")
@requires("requests.decide")
def request_notice_withdraw(request_id: str, recipient: str):
    """Undo a recorded notice: the recipient is "to be told" again."""
    req = _load(request_id)
    why_not = _may_act(req)
    if why_not:
        deny(why_not, target=f"request:{req.id}")
    if not f.ConfirmForm().validate_on_submit():
        abort(400)
    done = attempt(
        lambda: told.withdraw_notice(req, recipient, actor=actor()), not_found_is_404=True
    )
    if done:
        flash(f"Withdrawn: {RECIPIENTS[recipient].name} is to be told again.")
    return redirect(url_for("dashboard.request_page", request_id=req.id, _anchor="told"), code=303)


@bp.get("/requests/<request_id>/records")
@requires("requests.read")
def request_records(request_id: str):
    """The subject's records as the data map finds them, each with where it came from and
    what changed since. Streamed (keyset batches), so a large history costs no memory."""
    req = _load(request_id)
    audit.record(
        actor(),
        "request.records_viewed",
        subject_ref=requests.subject_ref(req),
        target=f"request:{req.id}",
    )
    # Streamed after web.transaction has committed the audit entry (the objects loaded here
    # stay as they are: a streamed answer's commit does not expire them).
    return Response(
        stream_template(
            "dashboard/records.html",
            req=req,
            sections=access.iter_sections(req),
            names=queue.officer_names(),
        )
    )


@bp.route("/requests/<request_id>/<action>", methods=["GET", "POST"])
@requires("requests.decide")
def request_action(request_id: str, action: str):
    spec = ACTIONS.get(action)
    if spec is None:
        abort(404)
    req = _load(request_id)
    why_not = _may_act(req)
    if why_not:
        deny(why_not, target=f"request:{req.id}")
    if action not in requests.allowed_actions(req):
        flash(f"“{spec.title}” is not possible for a request that is {req.status}.")
        return redirect(url_for("dashboard.request_page", request_id=req.id), code=303)
    form = spec.form()
    if form.validate_on_submit():
        done = attempt(lambda: _act(req, spec, form), form=form)
        if not done:
            req = _load(request_id)  # as it was before the refused action
            return _action_page(req, action, spec, form, error=done.error.message), 422
        flash(spec.done)
        return redirect(url_for("dashboard.request_page", request_id=req.id), code=303)
    return _action_page(req, action, spec, form), 422 if form.is_submitted() else 200


def _act(req: RightsRequest, spec: Action, form) -> None:
    """The officer takes the request if nobody holds it, then acts."""
    who = actor()
    if req.assignee_id is None:
        requests.assign(req, me().id, actor=who)
    spec.run(req, form, who)


def _action_page(req, action, spec, form, error=None):
    return render_template(
        "dashboard/action.html",
        req=req,
        action=action,
        spec=spec,
        form=form,
        error=error,
        now=utcnow(),
        remedies=notices.remedies_text(),
        profile_fields=requests.profile_fields(req) if action == "approve" else [],
        correction=requests.details(req).get("correction"),
    )


@bp.post("/requests/<request_id>/assign")
@requires("requests.decide")
def request_assign(request_id: str):
    """Take a request (anyone who may act on it), or give it to someone (admins)."""
    req = _load(request_id)
    form = f.AssignForm()
    form.officer.choices = _assignable()
    if not form.validate_on_submit():
        abort(400)
    target = int(form.officer.data) if form.officer.data else None
    if officers.allowed(me(), "requests.assign_others"):
        pass
    elif target != me().id or _may_act(req):
        deny(
            _may_act(req) or "Only an admin can give a request to someone else.",
            target=f"request:{req.id}",
        )
    assigned = attempt(
        lambda: requests.assign(req, target, actor=actor()),
        flash_error=True,
        catch=InvalidTransition,
    )
    if assigned:
        flash("The request is yours." if target == me().id else "Request reassigned.")
    return redirect(url_for("dashboard.request_page", request_id=req.id), code=303)


@bp.get("/requests/<request_id>/evidence/<int(max=2147483647):attachment_id>")
@requires("requests.read")
def request_evidence(request_id: str, attachment_id: int):
    """One attachment, downloaded or (``?inline=1``, the page's thumbnail) shown in the page:
    the same permission and the same audit row either way."""
    req = _load(request_id)
    try:
        media_type, content = evidence.read(req, attachment_id, actor=actor())
    except NotFound:
        abort(404)
    disposition = "inline" if http.args.get("inline") == "1" else "attachment"
    return Response(
        content,
        mimetype=media_type,
        headers={
            "Content-Disposition": (
                f'{disposition}; filename="{evidence.filename(attachment_id, media_type)}"'
            ),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
