"""How the API reads its input: webargs (through flask-smorest's ``arguments``) as Lethe has
always read it, so that moving the loading into decorators changed no answer.

A body must be a JSON object whose every key and text is clean (no NUL, no lone surrogate); a
query string is handed to the schema as it came, so that a parameter given twice is refused
(``schemas.QueryIn``); unknown fields and parameters are refused by the schemas themselves; and
a refusal is the schema's own ``ValidationError``, which the blueprint's handler answers in
the API's error shape (422, field by field).
"""

from flask import request
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser

from web.validation import clean_text


def parsed_body():
    """The JSON body, or None when it is missing, not JSON, or nested too deeply to parse."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def json_body() -> dict:
    """The body as a JSON object with clean keys and text, or the 422 saying what is wrong."""
    body = parsed_body()
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the body must be a JSON object"]})
    bad = {
        str(name): ["must be text without NUL characters or unpaired surrogates"]
        for name, value in body.items()
        if not (clean_text(name) and clean_text(value))
    }
    if bad:
        raise ValidationError(bad)
    return body


class Parser(FlaskParser):
    """webargs' Flask parser, reading input the way the views did before it (see above)."""

    # The schema's own Meta.unknown (RAISE) everywhere: webargs would drop unknown query
    # parameters silently.
    DEFAULT_UNKNOWN_BY_LOCATION = dict.fromkeys(FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION)

    def load_json(self, req, schema):
        # Not webargs' own: it answers malformed JSON with a 400 and a missing body with {}.
        return json_body()

    def load_querystring(self, req, schema):
        return req.args

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        # webargs files the messages under the location ({"json": {...}}); clients have always
        # had them by field alone.
        (messages,) = error.messages.values()
        raise ValidationError(messages) from error
