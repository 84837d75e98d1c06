"""Former members: the record key in, a freshly signed statement of what is still held out
(and the receipt file again). POST only: the key never goes in a URL."""

from flask import Response, abort, current_app, render_template
from flask import request as http
from flask_babel import gettext as _

from rights.erasure import erasure, record_keys, statements
from rights.errors import RightsError
from rights.ledger import signing
from web.extensions import RECORD_KEY_LOOKUPS, limit_failures
from web.public import bp, no_store
from web.public.downloads import receipt_file
from web.public.forms import EmptyForm, RecordKeyForm


def _statement_limit():
    return current_app.config["RATELIMIT_STATEMENTS"]


def _too_many_tries(when: str):
    """Too many failed look-ups from this client: the page, with what was typed still in the
    box, and when to try again in words."""
    page = render_template(
        "public/records.html",
        form=RecordKeyForm(),
        too_many=_(record_keys.TOO_MANY_TRIES).format(when=when),
    )
    return page, 429


@bp.route("/records", methods=["GET", "POST"])
@limit_failures(
    _statement_limit, scope=RECORD_KEY_LOOKUPS, answer=_too_many_tries, methods=["POST"]
)
def records():
    """Former members: the record key in, a freshly signed statement out.

    A key with a typo in it is refused as one (422, next to the box and in the summary)
    before anything is looked up. Unknown and malformed keys get one answer (a 404: nothing
    the lookup wrote is kept). After a failure the box keeps what was typed: the page is the
    answer to a POST, never cached, and the key never goes in a URL. Only failures count
    towards the rate limit (web.extensions.limit_failures)."""
    form = RecordKeyForm()
    if not form.is_submitted():
        return render_template("public/records.html", form=form)
    valid = form.validate()
    if valid and record_keys.has_typo(form.record_key.data):
        form.record_key.errors.append(_(record_keys.TYPO))
        return render_template("public/records.html", form=form), 422
    if valid and http.form.get("download") == "receipt":
        # The receipt file only: no statement is signed (each one is a leaf of the public
        # log, and this one would be thrown away).
        receipt = erasure.receipt_by_record_key(form.record_key.data)
        if receipt is not None:
            return receipt_file(receipt, form.record_key.data)
        valid = False
    found = statements.for_record_key(form.record_key.data) if valid else None
    if found is None:
        return render_template("public/records.html", form=form, not_found=True), 404
    token, claims = found
    if http.form.get("download") == "statement":
        return no_store(
            Response(token, mimetype="application/jose"),
            f"statement-{claims['statement_id'][:8]}.jws",
        )
    return render_template(
        "public/statement.html",
        form=form,
        token=token,
        claims=claims,
        held=statements.held_in_words(claims["held"]),
        told=statements.statement_in_words(claims)["told"],
    )


@bp.post("/records/statement")
def statement_download():
    """The statement on screen, as a file: the page posts back the JWS it shows; it is
    checked against our keys and returned as is (no second statement is made)."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    token = http.form.get("statement", "")
    try:
        claims = signing.verify(token, signing.STATEMENT_TYP)
    except RightsError:
        abort(400)
    return no_store(
        Response(token, mimetype="application/jose"), f"statement-{claims['statement_id'][:8]}.jws"
    )
