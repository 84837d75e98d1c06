"""The trace id of the work in hand, and Lethe's JSON log lines.

An HTTP request's id (``X-Request-ID``, web/logging.py) follows the work it causes into the
worker: the web layer binds it here while a request runs, the outbox stamps it on every message
queued meanwhile (``outbox.trace_id``), and the worker binds a message's trace id while it
handles that message — so what a job queues in turn (an erasure's completion email) carries the
id of the HTTP request that started it all. It lives in a context variable, here at the bottom
of the layers, because storage and rights never import web.

Outside any request and any job (a CLI command, a retention sweep) nothing is bound:
:func:`current_or_new` then starts a trace of its own, a new uuid4 hex — the same form as the id
of a request whose client gave none — so the chain of messages such work starts can still be
followed from one log line to the next.

A trace id is never personal data: a client's id is kept only when it matches
``GOOD_REQUEST_ID`` (web/logging.py), else replaced with a new one.
"""

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_current: ContextVar[str | None] = ContextVar("lethe_trace_id", default=None)


def current() -> str | None:
    """The trace id bound now (a request's id, or the id of the message the worker runs)."""
    return _current.get()


def new_id() -> str:
    return uuid.uuid4().hex


def current_or_new() -> str:
    """The trace id bound now, or a new one for work that no request or job started."""
    return _current.get() or new_id()


def bind(trace_id: str | None) -> Token:
    """Bind ``trace_id`` until :func:`unbind` is given the token this returns."""
    return _current.set(trace_id)


def unbind(token: Token) -> None:
    """Put back what was bound before :func:`bind` returned ``token``. A token from another
    context (a request's teardown run elsewhere than its start) unbinds all the same."""
    try:
        _current.reset(token)
    except ValueError:
        _current.set(None)


@contextmanager
def bound(trace_id: str | None) -> Iterator[None]:
    """Bind ``trace_id`` for the ``with`` block (what it was before comes back after)."""
    token = bind(trace_id)
    try:
        yield
    finally:
        unbind(token)


# --- JSON log lines --------------------------------------------------------------------------

# The worker's line per message it handles (an email, a job, a webhook delivery): its kind,
# topic, outcome, attempt, time taken and trace id (as ``request_id``, the access line's name).
JOBS_LOG = "lethe.jobs"
jobs_log = logging.getLogger(JOBS_LOG)


def json_line(fields: dict) -> str:
    """One log line: ``fields`` as a compact JSON object, in the order given."""
    return json.dumps(fields, separators=(",", ":"))


def json_lines_somewhere(logger: logging.Logger) -> None:
    """INFO lines on ``logger`` whatever the root logger's level; to stderr, one JSON object a
    line, unless the process has configured logging itself (pytest's caplog does, and so does
    a process that called ``logging.basicConfig`` first)."""
    logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
