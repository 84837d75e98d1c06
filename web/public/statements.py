"""Former members: the record key in, a freshly signed statement of what is still held out
(and the receipt file again). POST only: the key never goes in a URL."""

from flask import Response, abort, current_app, render_template
from flask import request as http

from rights.erasure import erasure, statements
from rights.errors import RightsError
from rights.ledger import signing
from web.extensions import limiter
from web.public import bp, no_store
from web.public.downloads import receipt_file
from web.public.forms import EmptyForm, RecordKeyForm


def _statement_limit():
    return current_app.config["RATELIMIT_STATEMENTS"]


@bp.route("/records", methods=["GET", "POST"])
@limiter.limit(_statement_limit, methods=["POST"])
def records():
    """Former members: the record key in, a freshly signed statement out. Unknown and
    malformed keys get the same answer (a 404: nothing the lookup wrote is kept)."""
    form = RecordKeyForm()
    if not form.is_submitted():
        return render_template("public/records.html", form=form)
    found = statements.for_record_key(form.record_key.data) if form.validate() else None
    if found is None:
        form.record_key.data = ""  # a credential: never echoed back
        return render_template("public/records.html", form=form, not_found=True), 404
    token, claims = found
    if http.form.get("download") == "statement":
        return no_store(
            Response(token, mimetype="application/jose"),
            f"statement-{claims['statement_id'][:8]}.jws",
        )
    if http.form.get("download") == "receipt":
        receipt = erasure.receipt_by_record_key(form.record_key.data)
        return receipt_file(receipt, form.record_key.data)
    return render_template("public/statement.html", form=form, token=token, claims=claims)


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
