"""Privacy officers: accounts with argon2 password hashes and TOTP second factors.

Roles: ``officer`` decides requests; ``admin`` also manages officers, API keys, subscribers
and signing keys; ``auditor`` reads everything and changes nothing. Officers are looked up by
a blind index of their email (no address is stored); their TOTP secrets are sealed with the
service key.
"""

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select

from rights import audit
from rights.errors import Conflict, Invalid
from storage import vault
from storage.db import db
from storage.models import Officer

ROLES = ("officer", "admin", "auditor")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verified against when the email is unknown, so that an unknown officer costs the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


def _label(officer_index: str) -> str:
    return f"officer-totp:{officer_index}"


def create(email: str, *, name: str, role: str, password: str, actor: str) -> tuple[Officer, str]:
    """Create an officer (flushes). Returns the row and the ``otpauth://`` URI to enrol the
    authenticator app (shown once; the secret is kept only sealed)."""
    errors = {}
    if "@" not in (email or "") or len(email) > 254:
        errors["email"] = ["an email address"]
    if role not in ROLES:
        errors["role"] = [f"one of {', '.join(ROLES)}"]
    if not (name or "").strip():
        errors["name"] = ["required"]
    if len(password or "") < MIN_PASSWORD:
        errors["password"] = [f"at least {MIN_PASSWORD} characters"]
    if errors:
        raise Invalid("The officer cannot be created.", errors)
    index = vault.blind_index(email)
    if db.session.execute(select(Officer.id).where(Officer.email_index == index)).first():
        raise Conflict("An officer with this email already exists.", {"email": ["exists"]})
    secret = pyotp.random_base32()
    officer = Officer(
        email_index=index,
        display_name=name.strip(),
        role=role,
        password_hash=_hasher.hash(password),
        totp_secret_enc=vault.seal(_label(index), secret.encode()),
    )
    db.session.add(officer)
    db.session.flush()
    audit.record(actor, "officer.created", target=f"officer:{officer.id}", details={"role": role})
    issuer = current_app.config["CONTROLLER_NAME"]
    uri = pyotp.TOTP(secret).provisioning_uri(name=name.strip(), issuer_name=f"Lethe ({issuer})")
    return officer, uri


def authenticate(email: str, password: str, code: str) -> Officer | None:
    """The active officer these credentials belong to, or None. Unknown emails, wrong
    passwords and wrong codes take the same path and give the same answer."""
    officer = db.session.execute(
        select(Officer).where(Officer.email_index == vault.blind_index(email or ""))
    ).scalar_one_or_none()
    try:
        _hasher.verify(officer.password_hash if officer else _DUMMY_HASH, password or "")
        password_ok = officer is not None
    except (VerificationError, InvalidHashError):
        password_ok = False
    code_ok = False
    if officer is not None and officer.totp_secret_enc:
        secret = vault.unseal(_label(officer.email_index), officer.totp_secret_enc).decode()
        code_ok = pyotp.TOTP(secret).verify(str(code or "").strip(), valid_window=1)
    if not (password_ok and code_ok and officer.active):
        audit.record("anonymous", "officer.login_failed")
        return None
    audit.record(f"officer:{officer.id}", "officer.login")
    return officer
