"""How a page's view runs a service call that may be refused: :func:`attempt`.

Views never commit: :mod:`web.transaction` commits once, after the view, when the answer is a
success. A refused call (a domain error, :class:`rights.errors.RightsError`) must leave nothing
behind even when the view still answers with a success — most flash the reason and redirect —
so :func:`attempt` rolls its changes back and puts the reason where the person will read it:
next to the form's fields, or in a flashed message.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort, flash

from rights.errors import RightsError
from storage.db import db


@dataclass(frozen=True)
class Attempt:
    """What a service call came to: its value, or the domain error that refused it. True when
    the call worked."""

    value: Any = None
    error: RightsError | None = None

    def __bool__(self) -> bool:
        return self.error is None


def attempt(
    call: Callable[[], Any],
    *,
    form=None,
    flash_error: bool = False,
    catch: type[RightsError] | tuple[type[RightsError], ...] = RightsError,
    not_found_is_404: bool = False,
) -> Attempt:
    """Run ``call`` (one service call, no arguments). When it raises ``catch`` (any domain
    error unless the view names narrower ones), roll back the request's changes and say why:
    next to ``form``'s fields, and/or (``flash_error``) as a flashed message; with
    ``not_found_is_404`` a :class:`~rights.errors.NotFound` answers 404 instead. Other errors
    propagate (the request is rolled back and answers 500)."""
    try:
        return Attempt(call())
    except catch as exc:
        db.session.rollback()
        if not_found_is_404 and exc.status == 404:
            abort(404)
        if form is not None:
            field_errors(form, exc)
        if flash_error:
            flash(exc.message)
        return Attempt(error=exc)


def field_errors(form, exc: RightsError) -> None:
    """A service's field errors (``RightsError.fields``) shown next to the form's fields."""
    for name, messages in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, *messages]
