"""Officer accounts: argon2 hashes, TOTP, roles, one answer for every wrong credential."""

import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import select

from rights.errors import Conflict, Invalid
from rights.ledger import officers
from storage.db import db
from storage.models import AuditEvent, Officer

PASSWORD = "correct horse battery"


def _create(runner, email="dpo@perkly.example", role="officer"):
    result = runner.invoke(
        args=["officers", "create", email, "--role", role, "--name", "Dana P. O."],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    uri = result.output.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/")
    return parse_qs(urlparse(uri).query)["secret"][0]


def test_create_stores_argon2_and_a_sealed_totp_secret(app, runner):
    secret = _create(runner)
    with app.app_context():
        officer = db.session.execute(select(Officer)).scalar_one()
        assert officer.password_hash.startswith("$argon2id$")
        assert PASSWORD not in officer.password_hash
        assert secret.encode() not in officer.totp_secret_enc
        assert officer.role == "officer" and "dpo@" not in officer.email_index
        assert db.session.execute(
            select(AuditEvent.action).where(AuditEvent.action == "officer.created")
        ).scalar_one()


def test_login_needs_password_and_current_code(app, runner):
    secret = _create(runner)
    code = pyotp.TOTP(secret).now()
    with app.app_context():
        assert officers.authenticate("DPO@perkly.example", PASSWORD, code) is not None
        totp = pyotp.TOTP(secret)
        valid = {totp.at(int(time.time()) + d * 30) for d in (-1, 0, 1)}
        wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
        assert officers.authenticate("dpo@perkly.example", PASSWORD, wrong) is None
        assert officers.authenticate("dpo@perkly.example", "wrong password!", code) is None
        assert officers.authenticate("nobody@perkly.example", PASSWORD, code) is None
        assert officers.authenticate("dpo@perkly.example", PASSWORD, "") is None
        failures = (
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "officer.login_failed")
            )
            .scalars()
            .all()
        )
        assert len(failures) >= 3 and all(f.subject_ref is None for f in failures)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "superuser"}, "role"),
        ({"password": "short"}, "password"),
        ({"name": "  "}, "name"),
    ],
)
def test_bad_officers_are_refused(app, kwargs, field):
    args = {"name": "X", "role": "auditor", "password": PASSWORD, **kwargs}
    with app.app_context(), pytest.raises(Invalid) as err:
        officers.create("x@perkly.example", by="test", **args)
    assert field in err.value.fields


def test_duplicate_officer_is_refused(app, runner):
    _create(runner)
    with app.app_context(), pytest.raises(Conflict):
        officers.create(
            "dpo@perkly.example", name="Again", role="admin", password=PASSWORD, by="test"
        )
    bad = runner.invoke(
        args=["officers", "create", "x@perkly.example", "--role", "admin", "--name", "X"],
        input="short\nshort\n",
    )
    assert bad.exit_code != 0 and "password" in bad.output
