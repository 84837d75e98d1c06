"""Filing a request, and the emailed links that confirm it (or resume it): confirmed by a
POST from the page the link opens, since mail scanners follow links."""

import time

from flask import abort, current_app, redirect, render_template, url_for
from flask import request as http

from rights.errors import InvalidTransition, RightsError, TokenInvalid
from rights.lifecycle import evidence, requests, verification
from storage.db import unit_of_work
from web.actions import attempt
from web.extensions import limiter
from web.public import bp, grant, limit
from web.public.forms import RIGHT_KEYS, RIGHTS, EmptyForm, RequestForm


@bp.route("/requests/new", methods=["GET", "POST"])
@limiter.limit(limit, methods=["POST"])
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
        # Committed here rather than after the view: the floor below sleeps, and an open
        # write transaction would hold SQLite's write lock through it, queuing every other
        # post behind this one.
        with unit_of_work():
            req = requests.file(
                type=form.type.data,
                email=form.email.data,
                details=form.details(),
                channel="web",
                actor="subject",
            )
            evidence.attach(req, pictures)
        # Filing for an address Lethe has never seen does a little more work (a new subject
        # and key) than for a known one; answer no sooner than a fixed floor so that timing
        # does not tell the two apart.
        floor = current_app.config["PUBLIC_FORM_MIN_SECONDS"]
        time.sleep(max(0.0, floor - (time.monotonic() - started)))
        return redirect(url_for("public.request_sent"), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("public/new_request.html", form=form, rights=RIGHTS), status


@bp.get("/requests/sent")
def request_sent():
    # The same page whether or not the address belongs to a member.
    return render_template("public/sent.html")


def _token_page(token: str, purpose: str, template: str):
    form = EmptyForm()
    try:
        req = verification.peek(token, purpose)
    except TokenInvalid:
        return _link_invalid(token)
    return render_template(template, form=form, token=token, req=req)


def _link_invalid(token: str):
    """The one page for a link that is unknown, used, expired or no longer applies; for a
    link Lethe issued, with a button that emails a fresh one for its request."""
    return render_template(
        "public/link_invalid.html", reference=verification.reference_of(token), form=EmptyForm()
    ), 400


@bp.get("/verify/<token>")
def verify(token: str):
    return _token_page(token, "verify", "public/verify.html")


@bp.post("/verify/<token>")
@limiter.limit(limit)
def verify_confirm(token: str):
    return _confirm(token, lambda: requests.confirm(token), (TokenInvalid, InvalidTransition))


@bp.get("/resume/<token>")
def resume(token: str):
    return _token_page(token, "resume", "public/resume.html")


@bp.post("/resume/<token>")
@limiter.limit(limit)
def resume_confirm(token: str):
    return _confirm(token, lambda: requests.resume(token), TokenInvalid)


def _confirm(token: str, spend, refusals):
    """Spend a link (``spend``): this browser may then see the request. A link that is
    unknown, used, expired or no longer applies gets the same page, and nothing is kept."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    spent = attempt(spend, catch=refusals)
    if not spent:
        return _link_invalid(token)
    grant(spent.value.id)
    return redirect(url_for("public.request_status", reference=spent.value.reference), code=303)
