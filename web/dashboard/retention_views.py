"""Retention on the dashboard: every policy with what a sweep would do now, the recent runs,
legal holds (placed and released by officers, audited), and the record of processing
(Art. 30) as a page, JSON and CSV."""

from datetime import UTC, datetime, time

from flask import Response, abort, flash, jsonify, redirect, render_template, url_for

from rights.erasure import retention
from web.actions import attempt
from web.dashboard import actor, bp, requires
from web.dashboard.forms import ConfirmForm, HoldForm


@bp.get("/retention")
@requires("retention.read")
def retention_page():
    return _page(HoldForm())


def _page(form, status=200):
    holds = retention.holds()
    return render_template(
        "dashboard/retention.html",
        rows=retention.overview(),
        runs=retention.recent_runs(),
        holds=[(h, retention.describe_target(h), retention.in_force(h)) for h in holds],
        form=form,
        confirm=ConfirmForm(),
        last_sweep=retention.last_sweep(),
    ), status


@bp.post("/retention/holds")
@requires("holds.manage")
def hold_place():
    form = HoldForm()
    if form.validate_on_submit():
        ends = form.ends_at.data
        placed = attempt(
            lambda: retention.place_hold(
                scope=form.scope.data,
                target=form.target.data,
                reason=form.reason.data,
                # A hold "until" a day lasts through that day.
                ends_at=datetime.combine(ends, time.max, tzinfo=UTC) if ends else None,
                actor=actor(),
            ),
            form=form,
        )
        if placed:
            flash("The hold is placed: sweeps leave those records until it ends.")
            return redirect(url_for("dashboard.retention_page"), code=303)
    return _page(form, 422)


@bp.post("/retention/holds/<int(max=2147483647):hold_id>/release")
@requires("holds.manage")
def hold_release(hold_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    released = attempt(
        lambda: retention.release_hold(hold_id, actor=actor()),
        flash_error=True,
        not_found_is_404=True,
    )
    if released:
        flash("The hold is released: the next sweep applies the policies to those records.")
    return redirect(url_for("dashboard.retention_page"), code=303)


@bp.get("/record-of-processing")
@requires("retention.read")
def record_page():
    return render_template("dashboard/record_of_processing.html", record=retention.record())


@bp.get("/record-of-processing.json")
@requires("retention.read")
def record_json():
    resp = jsonify(retention.record())
    resp.headers["Content-Disposition"] = 'attachment; filename="record-of-processing.json"'
    return resp


@bp.get("/record-of-processing.csv")
@requires("retention.read")
def record_csv():
    return Response(
        "".join(retention.record_csv()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="record-of-processing.csv"'},
    )
