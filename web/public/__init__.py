"""Public pages for data subjects. No account needed: identity is proven by emailed links,
and a confirmed link grants this browser session access to that one request for a while."""

import json
import time
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    send_file,
    session,
    stream_template,
    stream_with_context,
    url_for,
)
from flask import (
    request as http,
)

from rights.access import access, portability
from rights.contest import rectification
from rights.erasure import erasure, statements
from rights.errors import InvalidTransition, RightsError, TokenInvalid
from rights.ledger import signing
from rights.lifecycle import evidence, notices, requests, verification
from rights.recipients import webhooks
from storage.clock import utcnow
from storage.db import db
from web.extensions import limiter
from web.public.forms import RIGHT_KEYS, RIGHTS, AnswerForm, EmptyForm, RecordKeyForm, RequestForm

bp = Blueprint("public", __name__)
GRANT_HOURS = 2


def _limit():
    return current_app.config["RATELIMIT_PUBLIC_FORMS"]


def _statement_limit():
    return current_app.config["RATELIMIT_STATEMENTS"]


def _grant(request_id: str) -> None:
    grants = dict(session.get("grants", {}))
    grants[request_id] = (utcnow() + timedelta(hours=GRANT_HOURS)).isoformat()
    session["grants"] = grants
    session.permanent = True


def _granted(request_id: str) -> bool:
    expires = session.get("grants", {}).get(request_id)
    return bool(expires) and expires > utcnow().isoformat()


def _own_request(reference: str):
    req = requests.by_reference(reference)
    if req is None or not _granted(req.id):
        return None
    return req


@bp.get("/")
def index():
    return render_template("public/index.html", rights=RIGHTS)


@bp.route("/requests/new", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def new_request():
    form = RequestForm()
    if not form.is_submitted() and http.args.get("type") in RIGHT_KEYS:
        form.type.data = http.args["type"]
    pictures = None
    if form.validate_on_submit():
        try:
            pictures = evidence.check_pictures(form.uploads())
        except RightsError as exc:
            form.pictures.errors = [*form.pictures.errors, *exc.fields["pictures"]]
    if pictures is not None:
        started = time.monotonic()
        req = requests.file(
            type=form.type.data,
            email=form.email.data,
            details=form.details(),
            channel="web",
            actor="subject",
        )
        evidence.attach(req, pictures)
        db.session.commit()
        # Filing for an address Lethe has never seen does a little more work (a new subject
        # and key) than for a known one; answer no sooner than a fixed floor so that timing
        # does not tell the two apart.
        floor = current_app.config["PUBLIC_FORM_MIN_SECONDS"]
        time.sleep(max(0.0, floor - (time.monotonic() - started)))
        return redirect(url_for("public.request_sent"), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("public/new_request.html", form=form, rights=RIGHTS), status


@bp.get("/requests/<reference>/evidence/<int(max=2147483647):attachment_id>")
def request_evidence(reference: str, attachment_id: int):
    """A picture the subject sent with their request: to them alone (their verified browser)."""
    req = _own_request(reference)
    if req is None:
        abort(404)
    try:
        media_type, content = evidence.read(req, attachment_id, actor="subject")
    except RightsError:
        abort(404)
    db.session.commit()
    return _no_store(
        Response(content, mimetype=media_type), evidence.filename(attachment_id, media_type)
    )


@bp.get("/requests/sent")
def request_sent():
    # The same page whether or not the address belongs to a member.
    return render_template("public/sent.html")


def _token_page(token: str, purpose: str, template: str):
    form = EmptyForm()
    try:
        req = verification.peek(token, purpose)
    except TokenInvalid:
        return render_template("public/link_invalid.html"), 400
    return render_template(template, form=form, token=token, req=req)


@bp.get("/verify/<token>")
def verify(token: str):
    return _token_page(token, "verify", "public/verify.html")


@bp.post("/verify/<token>")
@limiter.limit(_limit)
def verify_confirm(token: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        req = requests.confirm(token)
    except (TokenInvalid, InvalidTransition):
        db.session.rollback()
        return render_template("public/link_invalid.html"), 400
    db.session.commit()
    _grant(req.id)
    return redirect(url_for("public.request_status", reference=req.reference), code=303)


@bp.get("/resume/<token>")
def resume(token: str):
    return _token_page(token, "resume", "public/resume.html")


@bp.post("/resume/<token>")
@limiter.limit(_limit)
def resume_confirm(token: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        req = requests.resume(token)
    except TokenInvalid:
        db.session.rollback()
        return render_template("public/link_invalid.html"), 400
    db.session.commit()
    _grant(req.id)
    return redirect(url_for("public.request_status", reference=req.reference), code=303)


TOLD_ABOUT = ("rectification", "erasure", "restriction", "objection", "consent_withdrawal")


def _unreadable_in_words(receipt) -> str:
    """When no copy of the person's data can be read any more, said as a person would."""
    state = statements.key_unrecoverable(receipt)
    if state["unrecoverable"]:
        return (
            "The key that opened your data has been destroyed: no copy of it anywhere — not "
            "in our backups either — can be read by anyone, us included."
        )
    when = state["unrecoverable_after"]
    if not when:
        return ""
    at = datetime.fromisoformat(when)
    now = utcnow()
    if at <= now:
        return (
            "Copies of your data in our backups and logs are encrypted, and the key that opens "
            "them is being destroyed now: once that is done, no copy anywhere can be read by "
            "anyone, us included."
        )
    if at.date() == now.date():
        day = "today"
    elif (at.date() - now.date()).days == 1:
        day = "tomorrow"
    else:
        day = f"{at.day} {at:%B %Y}"
    return (
        "Copies of your data in our backups and logs are encrypted, and the key that opens "
        f"them is destroyed soon after {day} at {at:%H:%M} UTC, when we change keys: from then "
        "on no copy anywhere can be read by anyone, us included."
    )


@bp.get("/requests/<reference>")
def request_status(reference: str, answer_form=None, status=200):
    answer_form = answer_form or AnswerForm()
    req = _own_request(reference)
    if req is None:
        # Same page for unknown references and for ones this browser may not see.
        return render_template("public/request_locked.html", reference=reference, form=EmptyForm())
    receipt = erasure.receipt_for(req) if req.type == "erasure" else None
    record_key = erasure.reveal_record_key(receipt) if receipt else None
    if record_key:
        db.session.commit()  # shown once: the sealed copy is gone now
    return render_template(
        "public/request.html",
        req=req,
        receipt=receipt,
        record_key=record_key,
        unreadable=_unreadable_in_words(receipt) if receipt else None,
        events=requests.events(req),
        downloads=requests.downloads_available(req),
        can_withdraw=req.status not in {s.value for s in requests.TERMINAL},
        extension_reason=requests.extension_reason(req),
        decision_reason=requests.decision_reason(req),
        remedies=notices.remedies_text(),
        form=EmptyForm(),
        now=utcnow(),
        attachments=evidence.for_request(req),
        pickable=_pickable(req),
        # Art. 19, last sentence: the recipients told of this request's changes.
        told=webhooks.recipients_of(req.id) if req.type in TOLD_ABOUT else None,
        **_question(req, answer_form),
    ), status


def _pickable(req):
    """The subject's records they may point at, while a correction or restriction is open."""
    if req.type in ("rectification", "restriction") and req.status in ("open", "in_progress"):
        return rectification.choices(req)
    return None


@bp.post("/requests/<reference>/records")
@limiter.limit(_limit)
def request_point_at(reference: str):
    req = _own_request(reference)
    if req is None or not EmptyForm().validate_on_submit():
        abort(404)
    try:
        held = requests.point_at(req, http.form.getlist("record"))
    except RightsError as exc:
        db.session.rollback()
        flash(exc.message)
    else:
        db.session.commit()
        flash(
            f"Thank you: {held} record(s) are now held back (not used or passed on) until "
            "we decide."
        )
    return redirect(url_for("public.request_status", reference=reference), code=303)


def _question(req, form) -> dict:
    """The officer's open question on this request, if any, with the form to answer it."""
    if not requests.awaiting_answer(req):
        return {"question": None, "answer_form": None}
    asked = [e for e in requests.events(req) if e.kind == "information_requested"][-1]
    return {"question": requests.event_text(req, asked), "answer_form": form}


@bp.post("/requests/<reference>/answer")
@limiter.limit(_limit)
def request_answer(reference: str):
    req = _own_request(reference)
    if req is None:
        abort(404)
    form = AnswerForm()
    if not form.validate_on_submit():
        return request_status(reference, answer_form=form, status=422)
    try:
        requests.answer_information(req, answer=form.answer.data)
    except InvalidTransition as exc:
        db.session.rollback()
        flash(exc.message)
    else:
        db.session.commit()
        flash("Thank you: your answer was sent to the officer handling your request.")
    return redirect(url_for("public.request_status", reference=reference), code=303)


@bp.post("/requests/<reference>/link")
@limiter.limit(_limit)
def request_link(reference: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    # Looked up by the worker, not here: this answer costs the same whether or not it exists.
    requests.ask_for_resume_link(reference)
    db.session.commit()
    flash(
        "If this reference exists, we will email a new link to the address on the request "
        "within a few minutes (at most one an hour)."
    )
    return redirect(url_for("public.request_status", reference=reference), code=303)


@bp.post("/requests/<reference>/withdraw")
def request_withdraw(reference: str):
    req = _own_request(reference)
    if req is None or not EmptyForm().validate_on_submit():
        abort(404)
    try:
        requests.withdraw(req, actor="subject")
    except InvalidTransition as exc:
        db.session.rollback()
        flash(exc.message)
    else:
        db.session.commit()
        flash("Your request was withdrawn.")
    return redirect(url_for("public.request_status", reference=reference), code=303)


@bp.post("/requests/<reference>/receipt")
def receipt_download(reference: str):
    """The receipt file (receipt + record key), right after the key is shown: the browser
    posts the key back, so it never sits on the server in clear or in a URL."""
    req = _own_request(reference)
    form = RecordKeyForm()
    if req is None or not form.validate_on_submit():
        abort(404)
    receipt = erasure.receipt_by_record_key(form.record_key.data)
    if receipt is None or receipt.request_id != req.id:
        abort(404)
    requests.record_download(req, "receipt", actor="subject")
    db.session.commit()
    return _receipt_file(receipt, form.record_key.data)


def _receipt_file(receipt, record_key: str) -> Response:
    body = json.dumps(statements.receipt_file(receipt, record_key), indent=2)
    return _no_store(
        Response(body, mimetype="application/json"), f"deletion-receipt-{receipt.id[:8]}.json"
    )


@bp.route("/records", methods=["GET", "POST"])
@limiter.limit(_statement_limit, methods=["POST"])
def records():
    """Former members: the record key in, a freshly signed statement out (POST only: the
    key never goes in a URL). Unknown and malformed keys get the same answer."""
    form = RecordKeyForm()
    if not form.is_submitted():
        return render_template("public/records.html", form=form)
    found = statements.for_record_key(form.record_key.data) if form.validate() else None
    if found is None:
        db.session.rollback()
        form.record_key.data = ""  # a credential: never echoed back
        return render_template("public/records.html", form=form, not_found=True), 404
    token, claims = found
    db.session.commit()
    if http.form.get("download") == "statement":
        return _no_store(
            Response(token, mimetype="application/jose"),
            f"statement-{claims['statement_id'][:8]}.jws",
        )
    if http.form.get("download") == "receipt":
        receipt = erasure.receipt_by_record_key(form.record_key.data)
        return _receipt_file(receipt, form.record_key.data)
    return render_template("public/statement.html", form=form, token=token, claims=claims)


@bp.post("/records/statement")
def statement_download():
    """The statement on screen, as a file: the page posts back the JWS it shows; it is
    checked against our keys and returned as is (no second statement is made)."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    token = http.form.get("statement", "")
    try:
        claims = signing.verify(token, signing.STATEMENT_TYP)
    except RightsError:
        abort(400)
    return _no_store(
        Response(token, mimetype="application/jose"), f"statement-{claims['statement_id'][:8]}.jws"
    )


def _download(reference: str, kind: str, what: str):
    req = _own_request(reference)
    if req is None or req.type != kind or not requests.downloads_available(req):
        abort(404)
    requests.record_download(req, what, actor="subject")
    db.session.commit()
    # Loaded again after the commit: the body is streamed from attributes already in memory.
    return requests.by_reference(reference)


def _no_store(resp: Response, filename: str | None = None) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    if filename:
        resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


@bp.get("/requests/<reference>/report")
def report_html(reference: str):
    req = _download(reference, "access", "report (html)")
    return _no_store(Response(stream_with_context(_stream_report(req))))


def _stream_report(req):
    meta = access.report_meta(req)
    yield from stream_template(
        "public/report.html", req=req, meta=meta, sections=access.iter_sections(req)
    )


@bp.get("/requests/<reference>/report.json")
def report_json(reference: str):
    req = _download(reference, "access", "report (json)")
    return _no_store(
        Response(stream_with_context(access.stream_json(req)), mimetype="application/json"),
        f"{req.reference}-report.json",
    )


@bp.get("/requests/<reference>/export.json")
def export_json(reference: str):
    req = _download(reference, "portability", "export (json)")
    return _no_store(
        Response(stream_with_context(portability.stream_json(req)), mimetype="application/json"),
        f"{req.reference}-export.json",
    )


@bp.get("/requests/<reference>/export.zip")
def export_zip(reference: str):
    req = _download(reference, "portability", "export (zip)")
    return _no_store(
        send_file(
            portability.build_zip(req),
            mimetype="application/zip",
            as_attachment=True,
            download_name=f"{req.reference}.zip",
        )
    )
