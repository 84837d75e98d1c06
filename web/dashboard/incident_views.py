"""Incidents: open one from a request, see who the fault touched, correct them all, tell each
of them once. Correcting and sending each show what they will do first (a page with the
counts and, for the apology, one member's copy; its button posts). Long runs go in time-boxed
slices: each press of "Correct" or "Send" does as many batches as fit in a few seconds and says
how far it got; pressing again carries on. Each batch is committed on its own
(:mod:`storage.steps` runs them), so a slice never holds the write lock for seconds, and what
was done stays done if the request dies half-way."""

import time

from flask import abort, flash, redirect, render_template, request, url_for

from rights.contest import incidents
from rights.errors import NotFound
from rights.lifecycle import requests
from rights.reports import queue
from storage.steps import Steps, run_steps
from web.actions import attempt
from web.dashboard import actor, bp, requires
from web.dashboard import forms as f

SLICE_SECONDS = 5.0


def _load(incident_id: int):
    try:
        return incidents.get(incident_id)
    except NotFound:
        abort(404)


@bp.get("/incidents")
@requires("requests.read")
def incidents_page():
    return render_template("dashboard/incidents.html", incidents=incidents.all_incidents())


@bp.route("/incidents/new", methods=["GET", "POST"])
@requires("requests.decide")
def incident_new():
    from_request = request.args.get("from")
    origin = None
    if from_request:
        try:
            origin = requests.get(from_request)
        except NotFound:
            abort(404)
    form = f.IncidentForm()
    if not form.is_submitted() and origin is not None:
        for key, value in incidents.suggest_filter(origin).items():
            getattr(form, key).data = value
    if form.validate_on_submit():
        opened = attempt(
            lambda: incidents.open_incident(
                title=form.title.data,
                root_cause=form.root_cause.data,
                record_filter=form.record_filter(),
                actor=actor(),
                request_id=origin.id if origin else None,
            ),
            form=form,
        )
        if opened:
            incident_id = opened.value.id
            return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("dashboard/incident_new.html", form=form, origin=origin), status


@bp.get("/incidents/<int(max=2147483647):incident_id>")
@requires("requests.read")
def incident_page(incident_id: int):
    incident = _load(incident_id)
    return _page(incident)


def _page(incident, *, apology=None, cause=None, status=200):
    if apology is None:
        apology = f.ApologyForm(
            apology_subject=incident.apology_subject, apology_body=incident.apology_body
        )
    return render_template(
        "dashboard/incident.html",
        incident=incident,
        description=incidents.Filter.load(incident.record_filter).describe(),
        scope=incidents.touched(incident),
        timeline=incidents.timeline(incident),
        names=queue.officer_names(),
        apology=apology,
        cause=cause or f.RootCauseForm(root_cause=incident.root_cause),
    ), status


def _slices(incident_id: int, step) -> tuple[int, bool]:
    """Run ``step`` batch after batch, each committed, for at most SLICE_SECONDS. Returns how
    many were done and whether nothing is left."""
    return run_steps(_batches(incident_id, step))


def _batches(incident_id: int, step) -> Steps[tuple[int, bool]]:
    started, done = time.monotonic(), 0
    while time.monotonic() - started < SLICE_SECONDS:
        n = step(incidents.get(incident_id), actor=actor())
        yield
        if not n:
            return done, True
        done += n
    return done, False


@bp.get("/incidents/<int(max=2147483647):incident_id>/correct")
@requires("requests.decide")
def incident_confirm_correct(incident_id: int):
    """What "Correct all" will do, with the counts and who is left as decided, before it
    is done (the button posts to :func:`incident_correct`)."""
    incident = _load(incident_id)
    scope = incidents.touched(incident)
    decided = incidents.touched(incident, state=incidents.DECIDED).rows if scope.decided else []
    return render_template(
        "dashboard/incident_confirm_correct.html",
        incident=incident,
        description=incidents.Filter.load(incident.record_filter).describe(),
        scope=scope,
        decided=decided,
        form=f.ConfirmForm(),
    )


@bp.post("/incidents/<int(max=2147483647):incident_id>/correct")
@requires("requests.decide")
def incident_correct(incident_id: int):
    _load(incident_id)
    if not f.ConfirmForm().validate_on_submit():
        abort(400)
    done, finished = _slices(incident_id, incidents.correct_batch)
    incident = incidents.get(incident_id)
    if finished:
        flash(f"Corrected: {incident.corrected} award(s) in all.")
    else:
        flash(f"{done} more done ({incident.corrected} corrected so far). Press Correct to go on.")
    return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)


@bp.post("/incidents/<int(max=2147483647):incident_id>/apology")
@requires("requests.decide")
def incident_apology(incident_id: int):
    incident = _load(incident_id)
    form = f.ApologyForm()
    if incident.notified:
        flash("The apology has been sent: it stays as the members received it.")
        return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)
    saved = form.validate_on_submit() and attempt(
        lambda: incidents.set_apology(
            incident,
            subject=form.apology_subject.data,
            body=form.apology_body.data,
            actor=actor(),
        ),
        form=form,
    )
    if saved:
        flash("Apology saved.")
        return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)
    return _page(incidents.get(incident_id), apology=form, status=422)


@bp.post("/incidents/<int(max=2147483647):incident_id>/root-cause")
@requires("requests.decide")
def incident_root_cause(incident_id: int):
    incident = _load(incident_id)
    form = f.RootCauseForm()
    if not form.validate_on_submit():
        return _page(incident, cause=form, status=422)
    incidents.update_root_cause(incident, form.root_cause.data, actor=actor())
    flash("Root cause saved.")
    return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)


@bp.get("/incidents/<int(max=2147483647):incident_id>/notify")
@requires("requests.decide")
def incident_confirm_notify(incident_id: int):
    """Whom the apology will go to, and the apology as one of them will receive it, before
    it is sent (the button posts to :func:`incident_notify`)."""
    incident = _load(incident_id)
    return render_template(
        "dashboard/incident_confirm_notify.html",
        incident=incident,
        scope=incidents.touched(incident),
        preview=incidents.apology_preview(incident),
        form=f.ConfirmForm(),
    )


@bp.post("/incidents/<int(max=2147483647):incident_id>/notify")
@requires("requests.decide")
def incident_notify(incident_id: int):
    _load(incident_id)
    if not f.ConfirmForm().validate_on_submit():
        abort(400)
    sent = attempt(lambda: _slices(incident_id, incidents.notify_batch), flash_error=True)
    if not sent:
        return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)
    _, finished = sent.value
    incident = incidents.get(incident_id)
    if finished:
        flash(f"Apology queued to {incident.notified} member(s) in all.")
    else:
        flash(f"{incident.notified} member(s) told so far. Press Send to go on.")
    return redirect(url_for("dashboard.incident_page", incident_id=incident_id), code=303)
