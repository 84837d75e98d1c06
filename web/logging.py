"""Access logs: emailed links carry a single-use token in their path, kept out of the
development server's and gunicorn's access lines; and Lethe's own line, one JSON object per
request on the ``lethe.access`` logger, with the request's id (``X-Request-ID``), its route
rule rather than its path, and no personal data."""

import logging
import re
import time

from flask import Flask, g, request, request_finished, request_started, request_tearing_down

from storage import trace

TOKEN_PATH = re.compile(r"/(verify|resume)/[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    return TOKEN_PATH.sub(r"/\1/[redacted]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # gunicorn passes its access atoms as a mapping
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        elif record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


# --- request ids and the access line -----------------------------------------------------

ACCESS_LOG = "lethe.access"
REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's or a client's request id may be to be kept: anything else (too long, spaces,
# quotes, newlines that would forge a log line) is replaced with a new id.
GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A method outside these is counted and logged as "OTHER": a client cannot make up labels.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route of a request no rule matched: never its path
OBSERVERS = "lethe_request_observers"  # app.extensions: who else is told of each request

access_log = logging.getLogger(ACCESS_LOG)


def request_id() -> str | None:
    """This request's id (the client's ``X-Request-ID`` when well formed, else a new one)."""
    return g.get("request_id")


def route() -> str:
    """The URL rule the request matched (``/requests/<reference>``), never the path: a path
    carries references and the tokens of emailed links. A request that matched no rule (a
    404, or a 405: a method the rule does not take) is "unmatched"."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def method() -> str:
    return request.method if request.method in METHODS else "OTHER"


def _started(sender, **extra) -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if GOOD_REQUEST_ID.fullmatch(given) else trace.new_id()
    # What the request queues (emails, jobs, events) carries its id into the worker.
    g.trace_token = trace.bind(g.request_id)


def _torn_down(sender, **extra) -> None:
    """The request's id is unbound once it is over: work done after it in the same thread (a
    test's own code, the next request's hooks) is not taken for this request's."""
    token = g.pop("trace_token", None)
    if token is not None:
        trace.unbind(token)


def _finished(sender, response, **extra) -> None:
    """The request's id on its answer; one JSON line (method, route, status, time, id: no
    path, no query string, no address or user agent, nothing that names a person); and the
    same figures to each observer the app was given (the latency histogram)."""
    if g.get("request_id") is None:  # a request that never started (a test's own context)
        _started(sender)
    response.headers[REQUEST_ID_HEADER] = g.request_id
    seconds = time.perf_counter() - g.request_started
    verb, rule, status = method(), route(), response.status_code
    access_log.info(
        trace.json_line(
            {
                "method": verb,
                "route": rule,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": g.request_id,
            }
        )
    )
    for observe in sender.extensions.get(OBSERVERS, ()):
        observe(verb, rule, status, seconds)


def install_request_log(app: Flask, *observers) -> None:
    """Give every request of ``app`` an id and an access line, and tell each of
    ``observers`` — ``observe(method, route, status, seconds)`` — how it went. Signals, not
    hooks: they run around every request whatever other hooks answer or refuse first (the
    rate limiter, CSRF, the dashboard's sign-in check), the access line after the commit
    (web/transaction.py)."""
    app.extensions[OBSERVERS] = observers
    request_started.connect(_started, app)
    request_finished.connect(_finished, app)
    request_tearing_down.connect(_torn_down, app)
    # INFO lines on lethe.access whatever the root logger's level (storage/trace.py).
    trace.json_lines_somewhere(access_log)
