"""Admins: officers, API keys and signing keys. Secrets (a new officer's authenticator
enrolment, a new API key) are shown once, on the answer to the form that made them."""

import io

from flask import abort, flash, redirect, render_template, url_for

from rights.ledger import apikeys, officers, signing
from storage.clock import utcnow
from web.actions import attempt
from web.dashboard import actor, bp, me, requires
from web.dashboard.forms import ApiKeyForm, ConfirmForm, OfficerForm


def _qr_svg(uri: str) -> str:
    """The enrolment URI as an SVG QR code (drawn here: no third party sees the secret).
    segno is imported here, when an admin enrols an officer, not in every process at start."""
    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out,
        kind="svg",
        scale=4,
        xmldecl=False,
        svgns=True,
        title="Authenticator enrolment code",
        dark="#1d2330",
    )
    return out.getvalue().decode()


@bp.get("/officers")
@requires("settings.read")
def officers_page():
    return _officers(OfficerForm())


def _officers(form, status=200):
    form.password.data = ""
    rows = officers.all_officers()
    return render_template(
        "dashboard/officers.html",
        form=form,
        officers=rows,
        locked=officers.lock_ends(rows),
        today=utcnow().date(),
        toggle=ConfirmForm(),
    ), status


@bp.post("/officers")
@requires("officers.manage")
def officer_create():
    form = OfficerForm()
    if form.validate_on_submit():
        made = attempt(
            lambda: officers.create(
                form.email.data,
                name=form.name.data,
                role=form.role.data,
                password=form.password.data,
                by=actor(),
            ),
            form=form,
        )
        if made:
            officer, uri = made.value
            return render_template(
                "dashboard/officer_created.html", officer=officer, uri=uri, qr=_qr_svg(uri)
            )
    return _officers(form, 422)


@bp.post("/officers/<int(max=2147483647):officer_id>/active")
@requires("officers.manage")
def officer_toggle(officer_id: int):
    officer = officers.get(officer_id)
    if officer is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if attempt(lambda: officers.set_active(officer, not officer.active, by=me()), flash_error=True):
        flash(f"{officer.display_name} is now {'active' if officer.active else 'deactivated'}.")
    return redirect(url_for("dashboard.officers_page"), code=303)


@bp.post("/officers/<int(max=2147483647):officer_id>/unlock")
@requires("officers.manage")
def officer_unlock(officer_id: int):
    officer = officers.get(officer_id)
    if officer is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = officer.display_name  # read before a refusal's rollback expires the row
    unlocked = attempt(lambda: officers.unlock(officer, by=me()))
    if unlocked:
        flash(f"{name} is unlocked and can sign in again.")
    else:
        flash(f"{name}: {unlocked.error.message}")
    return redirect(url_for("dashboard.officers_page"), code=303)


@bp.get("/api-keys")
@requires("settings.read")
def apikeys_page():
    return _apikeys(ApiKeyForm())


def _apikeys(form, status=200):
    return render_template(
        "dashboard/apikeys.html", form=form, keys=apikeys.all_keys(), revoke=ConfirmForm()
    ), status


@bp.post("/api-keys")
@requires("apikeys.manage")
def apikey_create():
    form = ApiKeyForm()
    if form.validate_on_submit():
        made = attempt(
            lambda: apikeys.create(form.name.data, sorted(form.scopes.data), actor=actor()),
            form=form,
        )
        if made:
            row, key = made.value
            return render_template("dashboard/apikey_created.html", row=row, key=key)
    return _apikeys(form, 422)


@bp.post("/api-keys/<int(max=2147483647):key_id>/revoke")
@requires("apikeys.manage")
def apikey_revoke(key_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    revoked = attempt(lambda: apikeys.revoke(key_id, actor=actor()))
    if not revoked:
        abort(404)
    flash(f"API key “{revoked.value.name}” is revoked.")
    return redirect(url_for("dashboard.apikeys_page"), code=303)


@bp.get("/signing-keys")
@requires("settings.read")
def signing_keys_page():
    return render_template(
        "dashboard/signing_keys.html", keys=signing.all_keys(), form=ConfirmForm()
    )


@bp.post("/signing-keys/rotate")
@requires("signing_keys.manage")
def signing_keys_rotate():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    kid = signing.rotate(actor())
    flash(f"New signing key {kid[:12]}…; the others are retired and stay published.")
    return redirect(url_for("dashboard.signing_keys_page"), code=303)
