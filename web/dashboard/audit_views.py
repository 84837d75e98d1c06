"""The audit trail: entries, and a check of the whole chain and its signed checkpoints."""

from flask import redirect, render_template, request, session, url_for

from rights.ledger import audit, audit_checkpoints
from rights.reports import queue
from web.dashboard import actor, bp, requires
from web.dashboard.forms import ConfirmForm

REPORT = "audit_report"


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 10**6 else 1


@bp.get("/audit")
@requires("audit.read")
def audit_page():
    filters = {
        k: request.args.get(k, "").strip()[:120] or None for k in ("subject_ref", "actor", "action")
    }
    page = audit.entries(page=_page_number(), **filters)
    return render_template(
        "dashboard/audit.html",
        page=page,
        filters=filters,
        names=queue.officer_names(),
        report=session.pop(REPORT, None),
        form=ConfirmForm(),
        page_args={k: v for k, v in filters.items() if v},
    )


@bp.post("/audit/verify")
@requires("audit.read")
def audit_verify():
    """Check every link, every hash and every signed checkpoint (read-only; the check itself
    is recorded, with its outcome)."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("error.html", code=400, name="Bad Request"), 400
    report = audit_checkpoints.verify()
    audit.record(
        actor(),
        "audit.verified",
        details={"ok": report.ok, "entries": report.entries, "broken": len(report.broken_ids)},
    )
    # Shown once on the page this redirects to (a reload does not run the check again).
    session[REPORT] = {
        "ok": report.ok,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "broken_ids": report.broken_ids[:21],
        "broken": len(report.broken_ids),
        "problems": report.problems[:10],
    }
    return redirect(url_for("dashboard.audit_page"), code=303)
