"""The API's blueprint: flask-smorest's, so that each route documents itself in the OpenAPI
document from the decorators that also run it (``arguments`` loads the input, ``response``
dumps the answer, ``require`` and ``idempotent`` say what they enforce), and Lethe's own error
handlers, which answer every error in the contract's shape.

flask-smorest rather than APIFairy: it writes the OpenAPI 3.1 the contract is in (APIFairy
writes 3.0.3 unless webhooks are declared), builds on the apispec, webargs and marshmallow the
API already used, lets each operation declare several answers per status and content type
(the disclosure list's JSON and CSV), and leaves authentication to us (APIFairy documents
security only through Flask-HTTPAuth).

An API call carries its key, never a cookie: it gets no session (:class:`NoSessionForTheApi`).
"""

import flask_smorest
from flask.sessions import NullSession, SecureCookieSessionInterface
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from rights.errors import RightsError
from web.api import errors
from web.api.parser import Parser
from web.api.responses import ErrorOut

PREFIX = "/api/v1"

# What each error status means on this API, as the document describes it.
ERROR_TEXT = {
    401: "No valid API key",
    403: "Key lacks the scope",
    404: "Not found",
    409: "Conflict (the record's state, an erased person, or a concurrent writer: retry)",
    413: "Body too large",
    422: "Invalid input (see error.fields)",
    429: "Rate limited",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"schema": {"type": "string"}}},
}
# gunicorn (or a proxy in front of it) refuses a request line over its limit (4094 bytes) with
# its own HTML page, before Lethe sees it: any operation with a path or query parameter can get
# this answer.
LONG_URL = {
    "schema": {"type": "string"},
    "content_type": "text/html",
    "description": "URI too long (refused by the HTTP server)",
}


# The error shape every declared error documents: one instance for all of them. flask-smorest
# deep-copies a view's documentation at each of its decorators, schema instances included, so
# an ErrorOut made per declared code (several per route) was copied again at every decorator
# above it: tens of thousands of copies when the API was imported, in every process (issue 17,
# start-up). This one only documents, never loads or dumps, so a copy of it may be itself; the
# document names it "Error" as before (web/api/openapi.py).
ERROR_SCHEMA = ErrorOut()
ERROR_SCHEMA.__deepcopy__ = lambda memo: ERROR_SCHEMA


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


class ApiBlueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint with Lethe's parser (web/api/parser.py), which documents what
    follows from a route itself: its operation's id is its endpoint's name in camelCase
    (``file_request`` -> ``fileRequest``); a POST can be refused a body over
    MAX_CONTENT_LENGTH (413); input that is loaded can be refused (422); and a path or query
    parameter can make the URL too long for the HTTP server (414)."""

    ARGUMENTS_PARSER = Parser()

    def add_url_rule(self, rule, endpoint=None, view_func=None, *args, **options):
        endpoint = endpoint or view_func.__name__
        if "POST" in options.get("methods", ()):
            view_func = self.declares(413)(view_func)
        if "<" in rule:
            view_func = self.alt_response(414, **LONG_URL)(view_func)
        view_func = self.doc(operationId=_camel(endpoint))(view_func)
        super().add_url_rule(rule, endpoint, view_func, *args, **options)

    def arguments(self, schema, **kwargs):
        load = super().arguments(schema, **kwargs)

        def decorator(view):
            view = self.declares(422)(load(view))
            if kwargs.get("location") == "query":
                view = self.alt_response(414, **LONG_URL)(view)
            return view

        return decorator

    def declares(self, *codes: int):
        """Document the errors a view answers, each in the API's error shape (ErrorOut)."""

        def decorator(view):
            for code in codes:
                view = self.alt_response(
                    code,
                    schema=ERROR_SCHEMA,
                    description=ERROR_TEXT[code],
                    headers=ERROR_HEADERS.get(code),
                )(view)
            return view

        return decorator


bp = ApiBlueprint("api", __name__, url_prefix=PREFIX)
bp.register_error_handler(ValidationError, errors.validation_error)
bp.register_error_handler(RightsError, errors.rights_error)
bp.register_error_handler(IntegrityError, errors.integrity_error)


class NoApiSession(NullSession):
    """What an API call has for a session: nothing, and writing to it is a bug."""

    def _fail(self, *args, **kwargs):
        raise RuntimeError("API calls have no session: the API key says who is asking.")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class NoSessionForTheApi(SecureCookieSessionInterface):
    """Flask's signed-cookie session for every page but the API's. An API call is
    authenticated by its key: it neither reads a session cookie (verifying its signature)
    nor sets one — before this, a browser's permanent session (the request pages', sent
    along to /api/v1/docs or a same-site call) was signed and set again on every API answer,
    with ``Vary: Cookie``. The session is opened before the URL is matched, so the API is
    told by its path."""

    null_session_class = NoApiSession

    def open_session(self, app, request):
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            return None  # Flask makes it null_session_class(): never saved, no cookie
        return super().open_session(app, request)


@bp.record_once
def _no_session_for_the_api(state) -> None:
    if type(state.app.session_interface) is not SecureCookieSessionInterface:
        raise RuntimeError("the API's session rule expects Flask's default session interface")
    state.app.session_interface = NoSessionForTheApi()
