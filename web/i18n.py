"""Which language a page is written in, and the switch on every public page.

The choice, in order: the language the person picked with the switch (a cookie, kept a year,
holding only "en" or "de"), else the best of ``Accept-Language``, else English. The officers'
dashboard and the JSON API are English whatever is asked (their readers are staff and
programs). Emails do not come from here: each is written in the language its request was filed
in (``RightsRequest.locale``, :func:`storage.wording.in_language`).

The switch is a small form (POST, no token in a URL) that sets the cookie and sends the person
back to the page they were on; it needs no JavaScript.
"""

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, current_app, has_request_context, redirect, request
from flask_babel import Babel, gettext

from rights.holdings import names
from storage import wording

COOKIE = "lang"
COOKIE_DAYS = 365
ENGLISH_ONLY = ("dashboard", "api")

babel = Babel()
bp = Blueprint("i18n", __name__)


def _language() -> str:
    if request.blueprint in ENGLISH_ONLY:
        return wording.DEFAULT_LANGUAGE
    chosen = request.cookies.get(COOKIE)
    if chosen in wording.LANGUAGES:
        return chosen
    return request.accept_languages.best_match(
        list(wording.LANGUAGES), default=wording.DEFAULT_LANGUAGE
    )


def select_locale() -> str:
    """Flask-Babel's locale selector. Outside a request (a worker, a CLI command) English,
    unless a block says otherwise (:func:`storage.wording.in_language`)."""
    if not has_request_context():
        return wording.babel_locale(wording.DEFAULT_LANGUAGE)
    return wording.babel_locale(_language())


def _safe_next(target: str | None) -> str:
    """Back to a page of this site only: a path, never another host ("//x", "/\\x")."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@bp.post("/language")
def switch():
    """Remember the language picked (``lang``) and go back to the page (``next``)."""
    response = redirect(_safe_next(request.form.get("next")), code=303)
    chosen = request.form.get("lang")
    if chosen in wording.LANGUAGES:
        response.set_cookie(
            COOKIE,
            chosen,
            max_age=COOKIE_DAYS * 86400,
            secure=current_app.config["PREFERRED_URL_SCHEME"] == "https",
            httponly=True,
            samesite="Lax",
        )
    return response


def _template_words() -> dict:
    language = wording.current_language()
    return {
        "current_language": language,
        "other_languages": {k: v for k, v in wording.LANGUAGES.items() if k != language},
    }


def translated(text) -> str:
    """A stored English phrase (in a signed receipt or statement, where the words must stay
    as signed) shown in the reader's language when the catalogue has it, else as stored."""
    return gettext(text) if isinstance(text, str) and text else text


def as_stored(value) -> bool:
    """The templates' ``as_stored`` test: a value shown as it was stored, not translated."""
    return isinstance(value, names.AsStored)


def compile_catalogues(root: Path) -> list[Path]:
    """Compile each ``<language>/LC_MESSAGES/messages.po`` under ``root`` whose ``.mo`` is
    missing or older, as ``make translations`` does: a server started from a checkout without
    make (``gunicorn 'app:create_app()'``) is not silently English. Written to a temporary file
    and renamed, so processes starting together never read half a catalogue. A read-only tree
    is logged and left (its .mo files are then the packager's job). Returns what was compiled."""
    done = []
    for po in sorted(root.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as f:
                catalogue = read_po(f, locale=po.parent.parent.name)
            fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalogue)
            os.replace(tmp, mo)
            done.append(mo)
        except OSError as exc:
            logging.getLogger("lethe.i18n").warning(
                "catalogue %s not compiled (%s): that language falls back to English",
                po.parent.parent.name,
                type(exc).__name__,
            )
    return done


def init_app(app) -> None:
    compile_catalogues(Path(app.root_path) / "translations")
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: "UTC")
    # {% trans %} blocks: whitespace folded, so a catalogue entry never depends on indenting.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.register_blueprint(bp)
    app.context_processor(_template_words)
    app.add_template_filter(translated, "translated")
    app.add_template_test(as_stored, "as_stored")
