"""Public pages for data subjects. No account needed: identity is proven by emailed links,
and a confirmed link grants this browser session access to that one request for a while.

The blueprint and what its pages share live here (the grants, the cache rule for personal
files); the pages themselves are :mod:`web.public.forms_views` (filing a request, confirming
links), :mod:`web.public.request_pages` (a request's page and what the subject does there),
:mod:`web.public.downloads` (reports, exports, the receipt file),
:mod:`web.public.statements` (former members' statements) and :mod:`web.public.verify_views`
(anyone checks a receipt or a statement). Views never commit:
:mod:`web.transaction` does, after the view; :func:`web.actions.attempt` runs a call that may
be refused.
"""

from datetime import timedelta

from flask import Blueprint, Response, current_app, render_template, session

from rights.lifecycle import requests
from storage.clock import utcnow
from web.public.forms import RIGHTS

bp = Blueprint("public", __name__)
GRANT_HOURS = 2


def limit():
    """The rate limit of the public forms' posts."""
    return current_app.config["RATELIMIT_PUBLIC_FORMS"]


def grant(request_id: str) -> None:
    """This browser may see ``request_id`` for the next GRANT_HOURS."""
    grants = dict(session.get("grants", {}))
    grants[request_id] = (utcnow() + timedelta(hours=GRANT_HOURS)).isoformat()
    session["grants"] = grants
    session.permanent = True


def _granted(request_id: str) -> bool:
    expires = session.get("grants", {}).get(request_id)
    return bool(expires) and expires > utcnow().isoformat()


def own_request(reference: str):
    """The request this browser was granted, or None (unknown and not granted alike)."""
    req = requests.by_reference(reference)
    if req is None or not _granted(req.id):
        return None
    return req


def no_store(resp: Response, filename: str | None = None) -> Response:
    """A personal file: never cached, downloaded under ``filename``."""
    resp.headers["Cache-Control"] = "no-store"
    if filename:
        resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


@bp.get("/")
def index():
    return render_template("public/index.html", rights=RIGHTS)


from web.public import (  # noqa: E402, F401
    downloads,
    forms_views,
    request_pages,
    statements,
    verify_views,
)
