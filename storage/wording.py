"""Words in the person's language: which languages Lethe speaks, and dates and numbers
written as that language writes them.

Text is translated where it is written, with Flask-Babel's ``gettext`` (``_``), ``ngettext``
and, for words declared at import time, ``lazy_gettext``; the catalogues are under
``translations/`` (``make messages`` extracts and updates them, ``make translations``
compiles them). Which language a page is in is chosen by :mod:`web.i18n`; an email is written
in the language its request was filed in (:func:`in_language`, ``RightsRequest.locale``).

This module sits in ``storage`` because the data map's own words (:mod:`storage.processes`)
write dates too; it holds no data.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

import flask_babel
from babel import dates
from flask import has_app_context

#: The languages offered, by code, each named in its own language (for the switch).
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"
#: How each language writes dates: English as in Britain and Ireland ("9 September 2026").
_FORMAT_LOCALE = {"en": "en_GB", "de": "de_DE"}


def N_(text: str) -> str:
    """Mark ``text`` for the catalogue without translating it here (gettext's "noop"): for
    words declared once and stored or sent as English (the data map's titles, the words of a
    signed receipt), translated where a person reads them (``gettext(text)``, the templates'
    ``translated`` filter)."""
    return text


def known(code: str | None) -> str:
    """``code`` if Lethe speaks it (its language part: "de-AT" is "de"), else the default."""
    lang = (code or "").replace("_", "-").split("-")[0].lower()
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def babel_locale(code: str | None) -> str:
    """The Babel locale a language's pages and emails are written in ("en" -> "en_GB")."""
    return _FORMAT_LOCALE[known(code)]


def current_language() -> str:
    """The language being written now ("en" outside a request or app)."""
    if not has_app_context():
        return DEFAULT_LANGUAGE
    return known(str(flask_babel.get_locale() or DEFAULT_LANGUAGE))


@contextmanager
def in_language(code: str | None) -> Iterator[None]:
    """Write in ``code`` for the block (an email in the language its request was filed in)."""
    with flask_babel.force_locale(babel_locale(code)):
        yield


def _as_datetime(value) -> datetime | date:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def long_date(value) -> str:
    """ "9 September 2026" / "9. September 2026"."""
    return flask_babel.format_date(_as_datetime(value), "long")


def day_and_month(value) -> str:
    """ "9 September" / "9. September"."""
    return dates.format_skeleton("MMMMd", _as_datetime(value), locale=flask_babel.get_locale())


def month_and_year(value) -> str:
    """ "September 2026"."""
    return dates.format_skeleton("yMMMM", _as_datetime(value), locale=flask_babel.get_locale())


def date_and_time(value) -> str:
    """ "9 September 2026, 14:05 UTC" (stored times are UTC)."""
    value = _as_datetime(value)
    return f"{long_date(value)}, {flask_babel.format_time(value, 'HH:mm')} UTC"


def number(n) -> str:
    """ "1,234" / "1.234"."""
    return flask_babel.format_decimal(n)
