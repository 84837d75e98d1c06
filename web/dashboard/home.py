"""The home page: the figures at a glance, and what needs the signed-in officer today."""

from flask import render_template

from rights.reports import queue, reporting
from storage.clock import utcnow
from web.dashboard import bp, charts, me, requires


@bp.get("/")
@requires("requests.read")
def home():
    now = utcnow()
    figures = reporting.overview(now)
    mine = queue.page(queue.Filters(assignee=me().id), per_page=10)
    overdue = queue.page(queue.Filters(due="overdue"), per_page=1).total
    soon = queue.page(queue.Filters(due="week"), per_page=1).total
    return render_template(
        "dashboard/home.html",
        figures=figures,
        received_chart=charts.stacked_columns(
            [w.strftime("%d %b") for w in figures.weeks], figures.received
        ),
        days_left_chart=charts.bars(
            figures.open_by_days_left, css=["b-overdue", "b-soon", "bar", "bar", "bar"]
        ),
        mine=mine,
        overdue=overdue,
        soon=soon,
        now=now,
        urgency=queue.urgency,
        days_left=queue.days_left,
    )
