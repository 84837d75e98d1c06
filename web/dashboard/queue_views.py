"""The queue: filters in the query string, search by email posted, the CSV export."""

from flask import Response, redirect, render_template, request, url_for

from rights.ledger import officers
from rights.reports import queue
from storage.clock import utcnow
from web.dashboard import actor, bp, requires
from web.dashboard.forms import EmailSearchForm, QueueFilterForm, choices
from web.streaming import streamed


def _filter_form() -> QueueFilterForm:
    form = QueueFilterForm(formdata=request.args)
    form.assignee.choices = choices(
        ("", "— anyone —"),
        ("0", "Nobody yet"),
        *((str(o.id), o.display_name) for o in officers.all_officers() if o.role != "auditor"),
    )
    return form


def _query_args(form: QueueFilterForm, **overrides) -> dict:
    args = {k: v for k, v in request.args.items() if v and k in form._fields}
    args.update(overrides)
    return args


@bp.get("/requests")
@requires("requests.read")
def queue_page():
    form = _filter_form()
    if not form.validate():
        return render_template(
            "dashboard/queue.html", form=form, search=EmailSearchForm(), page=None
        ), 422
    page = queue.page(form.filters(), page=form.page.data or 1)
    return render_template(
        "dashboard/queue.html",
        form=form,
        search=EmailSearchForm(),
        page=page,
        now=utcnow(),
        urgency=queue.urgency,
        days_left=queue.days_left,
        names=queue.officer_names(),
        page_url=lambda n: url_for("dashboard.queue_page", **_query_args(form, page=n)),
        csv_url=url_for("dashboard.queue_csv", **_query_args(form, page=None)),
    )


@bp.post("/requests/search")
@requires("requests.read")
def queue_search():
    """Email in (posted), the subject's pseudonymous reference out, into the queue's URL."""
    search = EmailSearchForm()
    if not search.validate_on_submit():
        return render_template(
            "dashboard/queue.html", form=_filter_form(), search=search, page=None
        ), 422
    ref = queue.subject_ref_for_email(search.email.data)
    # No such subject: a reference that matches nothing, so the page says "no requests".
    return redirect(
        url_for("dashboard.queue_page", status="all", subject=ref or "unknown"), code=303
    )


@bp.get("/requests.csv")
@requires("queue.export")
def queue_csv():
    form = _filter_form()
    if not form.validate():
        return redirect(url_for("dashboard.queue_page", **_query_args(form)), code=303)
    filters = form.filters()
    queue.record_export(filters, actor=actor())  # committed before the body streams
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        streamed(queue.export_csv(filters)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="lethe-queue-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
