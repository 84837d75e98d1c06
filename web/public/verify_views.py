"""Anyone checks a deletion receipt or a holdings statement here, with no command line: pasted,
or the file they downloaded uploaded. It is checked against our published keys
(:func:`rights.ledger.signing.verify`, the JWKS at ``/.well-known/jwks.json``) and the answer
says in words whether it is genuine, who signed it, when and what it says — or that it was
changed, or is not ours.

Anyone may paste anyone's receipt, so the page says only what the signed document says
(:mod:`rights.erasure.statements` reads it in words) and looks nobody up; nothing is kept or
logged of what was pasted. Also here: the template globals that put a receipt and a statement
in words on the person's own pages.
"""

import base64
import binascii
import json
import re

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import TextAreaField
from wtforms.validators import Length

from rights.erasure import statements
from rights.errors import InvalidSignature
from rights.ledger import signing, transparency
from storage.wording import N_
from web.extensions import limiter
from web.public import bp, limit
from web.public.forms import TOO_LONG

# A statement for someone with many kept records may be long (signing allows 4 MB of claims).
MAX_DOCUMENT = 6_000_000
# A compact JWS: three base64url parts; ours start with the header's '{"' ("eyJ").
_JWS = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_WHITESPACE = re.compile(r"\s+")
# The words below are declared in English and said in the reader's language where the page is
# made (gettext).
KINDS = {
    signing.RECEIPT_TYP: N_("deletion receipt"),
    signing.STATEMENT_TYP: N_("holdings statement"),
}
# Why a document is not genuine, in words (by :class:`InvalidSignature`'s reason).
NOT_GENUINE = {
    "malformed": N_(
        "This is not a receipt or statement of ours: it is not a document we sign. "
        "Check that you pasted all of it (three long runs of letters and numbers joined by "
        "dots), or upload the file exactly as you downloaded it."
    ),
    "unknown_key": N_(
        "This was not signed by us: none of the keys we have ever used signed it. "
        "It may come from another service, or be a forgery."
    ),
    "bad_signature": N_(
        "This document has been changed since we signed it, or the signature on it "
        "is not ours. Do not rely on what it says."
    ),
    "wrong_type": N_(
        "This was signed by us, but it is neither a deletion receipt nor a holdings "
        "statement, so this page cannot read it out."
    ),
}
# Why nothing was checked.
NOT_CHECKED = {
    "missing": N_("Paste a receipt or statement, or choose the file you downloaded."),
    "expired": N_(
        "This page was open too long to be sent safely. Paste the receipt or choose the "
        "file again, and check it."
    ),
}


class VerifyForm(FlaskForm):
    document = TextAreaField(
        _l("Paste the receipt or statement"),
        description=_l(
            "The signed receipt from your email or request page, or a statement: a "
            "long run of letters and numbers in three parts joined by dots. Line breaks do not "
            "matter."
        ),
        validators=[Length(max=MAX_DOCUMENT, message=TOO_LONG)],
        render_kw={"rows": 6, "spellcheck": "false", "autocomplete": "off"},
    )
    file = FileField(
        _l("Or upload the file you downloaded"),
        description=_l(
            "Your deletion receipt file (deletion-receipt-….html; older ones end in "
            ".json) or a statement file (statement-….jws)."
        ),
    )


@bp.route("/verify-receipt", methods=["GET", "POST"])
@limiter.limit(limit, methods=["POST"])
def verify_receipt():
    form = VerifyForm()
    if not form.is_submitted():
        return render_template("public/verify_receipt.html", form=form)
    if not form.validate() and "csrf_token" in form.errors:
        return _not_genuine(form, "expired")
    token = _token(form) if not form.errors else None
    if token is None:
        return _not_genuine(form, "missing" if _empty(form) else "malformed")
    try:
        typ, claims = _check(token)
    except InvalidSignature as exc:
        return _not_genuine(form, exc.reason)
    form.document.data = ""  # checked: the form is ready for the next one
    return render_template(
        "public/verify_receipt.html",
        form=form,
        result=_result(token, typ, claims),
    )


def _not_genuine(form: VerifyForm, reason: str):
    """The form again, saying why nothing was checked or why the document is not genuine."""
    form.document.data = ""  # never echoed back: it may be anything
    not_checked = NOT_CHECKED.get(reason)
    return render_template(
        "public/verify_receipt.html",
        form=form,
        not_checked=_(not_checked) if not_checked else None,
        refused=None if not_checked else _(NOT_GENUINE.get(reason, NOT_GENUINE["malformed"])),
    ), 422


def _empty(form: VerifyForm) -> bool:
    upload = form.file.data
    return not (form.document.data or "").strip() and not (upload and upload.filename)


def _token(form: VerifyForm) -> str | None:
    """The signed document, from the paste or else the file: a bare JWS (line breaks and
    spaces ignored), a receipt file (the HTML document, or the older JSON with a "receipt"
    field), a statement file; None when there is nothing that looks like one."""
    text = (form.document.data or "").strip()
    upload = form.file.data
    if not text and upload and upload.filename:
        raw = upload.stream.read(MAX_DOCUMENT + 1)
        if len(raw) > MAX_DOCUMENT:
            return None
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
    if not text:
        return None
    compact = _WHITESPACE.sub("", text)
    if compact.count(".") == 2 and "<" not in compact and "{" not in compact:
        return compact  # a bare JWS, however it was wrapped: signing.verify judges it
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for field in ("receipt", "statement"):
                if isinstance(document.get(field), str):
                    return document[field]
    found = _JWS.search(text)
    return found.group(0) if found else None


def _check(token: str) -> tuple[str, dict]:
    """(typ, claims) of a document we signed, whichever of the two it is; raises
    :class:`InvalidSignature` (its reason says why) otherwise."""
    try:
        return signing.RECEIPT_TYP, signing.verify(token, signing.RECEIPT_TYP)
    except InvalidSignature as exc:
        if exc.reason != "wrong_type":
            raise
    return signing.STATEMENT_TYP, signing.verify(token, signing.STATEMENT_TYP)


def _result(token: str, typ: str, claims: dict) -> dict:
    """What the page says of a genuine document: what it is, who signed it and when, and
    what it says in words (``words`` None when this version cannot read its claims)."""
    try:
        if typ == signing.RECEIPT_TYP:
            words = statements.receipt_in_words(claims)
        else:
            words = statements.statement_in_words(claims)
    except (KeyError, TypeError, ValueError, AttributeError):
        # Genuine, but shaped by a version that reads it differently: said as signed.
        words = None
    return {
        "kind": _(KINDS[typ]),
        "receipt": typ == signing.RECEIPT_TYP,
        "signed_by": claims.get("iss"),
        "signed_on": statements.signed_on(claims),
        "key": _kid(token),
        "words": words,
        "claims": json.dumps(claims, indent=2, sort_keys=True, ensure_ascii=False),
        # Where the public log has it (looked up by the document's hash, which names no one).
        "in_log": transparency.placement(token),
    }


def _kid(token: str) -> str | None:
    """The key that signed a verified document (its header is authentic once verified)."""
    header = token.split(".")[0]
    try:
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
