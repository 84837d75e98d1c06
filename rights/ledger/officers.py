"""Privacy officers: accounts with argon2 password hashes and TOTP second factors.

Sign-in is limited per address (the web layer) and per account (here): after
``LOGIN_LOCKOUT_FAILURES`` failures in a row an account is locked for
``LOGIN_LOCKOUT_MINUTES``; while locked even the right credentials get the answer any failure
gets, a success resets the count, and an admin can lift a lock early.

Roles: ``officer`` decides requests; ``admin`` also manages officers, API keys, subscribers
and signing keys; ``auditor`` reads everything and changes nothing. Officers are looked up by
a blind index of their email (no address is stored); their TOTP secrets are sealed with the
service key.
"""

import hmac
import re
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import or_, select, update

from rights.errors import Conflict, Invalid
from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import Officer, RightsRequest, Subject

ROLES = ("officer", "admin", "auditor")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that an unknown officer costs the same
    time. Made at the first sign-in, not at import: one argon2 hash cost every process (each
    gunicorn worker, each CLI command) 0.15 s at start. A test's stand-in hasher sets
    ``_DUMMY_HASH`` itself (tests/helpers.py)."""
    value = globals().get("_DUMMY_HASH")
    if value is None:
        value = globals()["_DUMMY_HASH"] = _hasher.hash("not-a-real-password-for-timing")
    return value


def __getattr__(name: str):
    # ``officers._DUMMY_HASH`` read from outside before the first sign-in (PEP 562).
    if name == "_DUMMY_HASH":
        return _dummy_hash()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _label(officer_index: str) -> str:
    return f"officer-totp:{officer_index}"


def create(
    email: str, *, name: str, role: str, password: str, by: str, totp_secret: str | None = None
) -> tuple[Officer, str]:
    """Create an officer (flushes). Returns the row and the ``otpauth://`` URI to enrol the
    authenticator app (shown once; the secret is kept only sealed). ``totp_secret`` is for
    the demo's published accounts only; real accounts get a fresh random one."""
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
    secret = totp_secret or pyotp.random_base32()
    officer = Officer(
        email_index=index,
        display_name=name.strip(),
        role=role,
        password_hash=_hasher.hash(password),
        totp_secret_enc=vault.seal(_label(index), secret.encode()),
    )
    db.session.add(officer)
    db.session.flush()
    audit.record(by, "officer.created", target=actor(officer), details={"role": role})
    issuer = current_app.config["CONTROLLER_NAME"]
    uri = pyotp.TOTP(secret).provisioning_uri(name=name.strip(), issuer_name=f"Lethe ({issuer})")
    return officer, uri


def authenticate(email: str, password: str, code: str) -> Officer | None:
    """The active officer these credentials belong to, or None. Unknown emails, wrong
    passwords, wrong codes and locked accounts take the same path and give the same answer:
    the password and the code are checked (against throwaway ones for an unknown email) and
    the failure is counted (for an unknown email, against no row) whatever the outcome."""
    now = utcnow()
    index = vault.blind_index(email or "")
    officer = db.session.execute(
        select(Officer).where(Officer.email_index == index)
    ).scalar_one_or_none()
    try:
        _hasher.verify(officer.password_hash if officer else _dummy_hash(), password or "")
        password_ok = officer is not None
    except (VerificationError, InvalidHashError):
        password_ok = False
    step = _matching_step(officer, code)
    locked = officer is not None and locked_until(officer, now) is not None
    if not (
        password_ok and step is not None and officer.active and not locked and _spend(officer, step)
    ):
        _count_failure(index, officer, now)
        # Which account was tried, as a keyed fingerprint: failures per account can be
        # counted and alerted on without the address being written down.
        account = vault.keyed_fingerprint("officer-login", vault.normalise_email(email or ""))
        audit.record("anonymous", "officer.login_failed", details={"account": account[:16]})
        return None
    officer.failed_logins = 0
    officer.locked_until = None
    officer.last_login_at = now
    audit.record(actor(officer), "officer.login")
    return officer


def _lockout() -> tuple[int, timedelta]:
    cfg = current_app.config
    return int(cfg["LOGIN_LOCKOUT_FAILURES"]), timedelta(minutes=int(cfg["LOGIN_LOCKOUT_MINUTES"]))


def locked_until(officer: Officer, now: datetime | None = None) -> datetime | None:
    """When this account's sign-in lock ends, if it is locked now; else None."""
    until = officer.locked_until
    return until if until is not None and until > (now or utcnow()) else None


def _count_failure(index: str, officer: Officer | None, now: datetime) -> None:
    """Count a failed sign-in against the account with this blind index and lock it at the
    limit, atomically (of failures racing, exactly one locks it). The statements run for an
    unknown email too, matching no row: the same work either way. Failures while an account
    is locked are not counted and do not make the lock longer."""
    limit, window = _lockout()
    if limit <= 0:
        return
    not_locked = or_(Officer.locked_until.is_(None), Officer.locked_until <= now)
    db.session.execute(
        update(Officer)
        .where(Officer.email_index == index, not_locked)
        .values(failed_logins=Officer.failed_logins + 1)
        .execution_options(synchronize_session=False)
    )
    locking = db.session.execute(
        update(Officer)
        .where(Officer.email_index == index, not_locked, Officer.failed_logins >= limit)
        .values(failed_logins=0, locked_until=now + window)
        .execution_options(synchronize_session=False)
    )
    if officer is None:
        return
    db.session.expire(officer, ["failed_logins", "locked_until"])
    if locking.rowcount == 1:
        audit.record(
            "lethe",
            "officer.locked",
            target=actor(officer),
            details={"failures": limit, "minutes": int(window.total_seconds() // 60)},
        )


CODE = re.compile(r"[0-9]{6,8}")
_DUMMY_TOTP = pyotp.TOTP(pyotp.random_base32())


def _matching_step(officer: Officer | None, code) -> int | None:
    """The time step of a valid code (one step of clock drift either way), or None. Unknown
    officers are checked against a throwaway secret, so both paths do the same work."""
    code = str(code or "").strip()
    if not CODE.fullmatch(code) or not code.isascii():
        return None
    if officer is not None and officer.totp_secret_enc:
        secret = vault.unseal(_label(officer.email_index), officer.totp_secret_enc).decode()
        totp = pyotp.TOTP(secret)
    else:
        totp = _DUMMY_TOTP
    now = int(utcnow().timestamp()) // totp.interval
    found = None
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found if officer is not None and officer.totp_secret_enc else None


def _spend(officer: Officer, step: int) -> bool:
    """Mark the code's time step used, atomically: of two sign-ins racing with one code, one
    wins. A code already used, or older than the last used, is refused (RFC 6238 §5.2)."""
    spent = db.session.execute(
        update(Officer)
        .where(
            Officer.id == officer.id,
            or_(Officer.totp_last_step.is_(None), Officer.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        return False
    officer.totp_last_step = step
    return True


def end_sessions(officer: Officer) -> None:
    """End every dashboard session of this officer (sign-out, deactivation)."""
    officer.session_epoch = (officer.session_epoch or 0) + 1


def actor(officer: Officer) -> str:
    """How an officer appears in events and the audit trail: an id, never an address."""
    return f"officer:{officer.id}"


# What each role may do. Per-object rules (who may decide which request) are in may_decide.
PERMISSIONS = {
    "requests.read": {"officer", "admin", "auditor"},
    "requests.decide": {"officer", "admin"},
    "requests.assign_others": {"admin"},
    "queue.export": {"officer", "admin", "auditor"},
    "audit.read": {"officer", "admin", "auditor"},
    "settings.read": {"admin", "auditor"},
    "officers.manage": {"admin"},
    "apikeys.manage": {"admin"},
    "signing_keys.manage": {"admin"},
    "subscribers.manage": {"admin"},
    # Authorized agents (the Data Rights Protocol): register and remove them.
    "agents.manage": {"admin"},
    "retention.read": {"officer", "admin", "auditor"},
    "holds.manage": {"officer", "admin"},
}


def allowed(officer: Officer | None, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(permission)
    return officer is not None and officer.active and officer.role in PERMISSIONS[permission]


def may_decide(officer: Officer, request: RightsRequest) -> str | None:
    """Why this officer may not act on this request, or None if they may.

    Officers act on requests that are theirs or nobody's yet (acting takes it); a request
    another officer holds is theirs until an admin reassigns it. Nobody decides a request
    about themselves.
    """
    if not allowed(officer, "requests.decide"):
        return "Your role can read requests but not act on them."
    if request.assignee_id not in (None, officer.id) and officer.role != "admin":
        return "Another officer holds this request; an admin can reassign it."
    subject = db.session.get(Subject, request.subject_id)
    if subject is not None and subject.email_index == officer.email_index:
        return "This request is about you: another officer must decide it."
    return None


def get(officer_id) -> Officer | None:
    try:
        return db.session.get(Officer, int(officer_id))
    except (TypeError, ValueError):
        return None


def all_officers() -> list[Officer]:
    return list(db.session.execute(select(Officer).order_by(Officer.id)).scalars())


def lock_ends(rows: list[Officer]) -> dict[int, datetime]:
    """When each of these accounts that is locked now is unlocked again, by id."""
    now = utcnow()
    return {o.id: until for o in rows if (until := locked_until(o, now)) is not None}


def unlock(officer: Officer, *, by: Officer) -> None:
    """Lift a sign-in lock before it ends by itself (flushes); the count starts again."""
    if locked_until(officer) is None:
        raise Invalid("This account is not locked.", {"locked": ["not locked"]})
    officer.locked_until = None
    officer.failed_logins = 0
    audit.record(actor(by), "officer.unlocked", target=actor(officer))


def set_active(officer: Officer, active: bool, *, by: Officer) -> None:
    """Deactivate (or reactivate) an account; a deactivated officer's sessions end at once.
    Nobody deactivates themselves (the last admin cannot lock everyone out that way)."""
    if officer.id == by.id:
        raise Invalid("You cannot change your own account's status.", {"active": ["yourself"]})
    officer.active = active
    if not active:
        end_sessions(officer)
    audit.record(
        actor(by),
        "officer.reactivated" if active else "officer.deactivated",
        target=actor(officer),
    )
