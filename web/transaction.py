"""The one commit boundary of a web request (the way Indico's request handler does it).

Views and services never commit. When the view's response is ready, :func:`commit_or_roll_back`
commits the session if the answer is a success (a status below 400) and rolls it back
otherwise; an exception rolls back too (Flask-SQLAlchemy removes the session at the end of the
request, and the error handler's response is below 400 never). A view whose refusal must still
keep something it wrote (an officer's failed sign-in counts towards the lockout) says so with
:func:`keep_changes`.
"""

from flask import Flask, g

from storage.db import db


def keep_changes() -> None:
    """Commit this request's changes even though its answer is an error (4xx)."""
    g.lethe_keep_changes = True


def commit_or_roll_back(response):
    if response.status_code < 400 or g.pop("lethe_keep_changes", False):
        session = db.session()
        # A streamed body (a report, an export) is read after this commit from the objects the
        # view loaded: they stay as they are instead of being expired and read again.
        expire, session.expire_on_commit = session.expire_on_commit, not response.is_streamed
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire
    else:
        db.session.rollback()
    return response


def install(app: Flask) -> None:
    # Registered first, so it runs last: every other after_request hook has had its say.
    app.after_request_funcs.setdefault(None, []).insert(0, commit_or_roll_back)
