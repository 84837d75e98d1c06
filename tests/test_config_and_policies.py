"""Start-up: secrets, production refusal, policy-file validation, the layering rule."""

import importlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import config
from app import create_app
from retention_policies import PolicyError, load_policies, policies
from retention_policies.policies import POLICY_DIR
from storage.datamap import CATEGORIES, LEDGER_RECORDS

ROOT = Path(__file__).resolve().parent.parent
# The module (the package's `policies` is the function of the same name).
policies_module = importlib.import_module("retention_policies.policies")


def test_production_refuses_to_start_without_secrets(tmp_path, monkeypatch):
    for name in ("SECRET_KEY", "KEY_ENCRYPTION_KEY", "BLIND_INDEX_KEY"):
        monkeypatch.delenv(f"LETHE_{name}", raising=False)
    monkeypatch.setenv("LETHE_ENV_NAME", "production")
    monkeypatch.setenv("LETHE_MAIL_BACKEND", "smtp")
    with pytest.raises(config.ConfigError) as err:
        create_app(instance_path=str(tmp_path))
    message = str(err.value)
    for name in ("LETHE_SECRET_KEY", "LETHE_KEY_ENCRYPTION_KEY", "LETHE_BLIND_INDEX_KEY"):
        assert name in message
    assert not (tmp_path / "secrets.json").exists()


def test_production_rejects_a_malformed_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LETHE_ENV_NAME", "production")
    monkeypatch.setenv("LETHE_MAIL_BACKEND", "smtp")
    monkeypatch.setenv("LETHE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("LETHE_KEY_ENCRYPTION_KEY", "too-short")
    monkeypatch.setenv("LETHE_BLIND_INDEX_KEY", "too-short")
    with pytest.raises(config.ConfigError, match="32 random bytes"):
        create_app(instance_path=str(tmp_path))


def test_development_generates_secrets_once_privately(tmp_path, monkeypatch):
    for name in ("SECRET_KEY", "KEY_ENCRYPTION_KEY", "BLIND_INDEX_KEY", "ENV_NAME"):
        monkeypatch.delenv(f"LETHE_{name}", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    first = create_app(instance_path=str(tmp_path))
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = create_app(instance_path=str(tmp_path))
    for name in config.SECRET_NAMES:
        assert first.config[name] == second.config[name] == json.loads(path.read_text())[name]
    assert first.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert str(tmp_path) in first.config["SQLALCHEMY_BINDS"]["keystore"]


def test_database_urls_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/lethe")
    monkeypatch.setenv("LETHE_KEYSTORE_URL", "postgresql://u@keys/vault")
    app = create_app(instance_path=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/lethe"
    assert app.config["SQLALCHEMY_BINDS"]["keystore"] == "postgresql+psycopg://u@keys/vault"


def test_shipped_policies_cover_every_category():
    loaded = policies()
    assert {c.retention_policy for c in CATEGORIES} | {
        r.retention_policy for r in LEDGER_RECORDS
    } == set(loaded)
    for cat in CATEGORIES:
        if cat.erasure.action == "retain":
            assert loaded[cat.retention_policy].retain_after_erasure is not None


@pytest.fixture
def policy_dir(tmp_path):
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.mark.parametrize(
    ("file", "edit", "expected"),
    [
        (
            "profile.toml",
            lambda t: t.replace('period = "30 days"', 'period = "soon"'),
            "profile.toml: field 'period'",
        ),
        (
            "profile.toml",
            lambda t: t.replace('period = "30 days"\n', ""),
            "profile.toml: field 'period' is missing",
        ),
        (
            "promotions.toml",
            lambda t: t.replace('action = "delete"', 'action = "shred"'),
            "promotions.toml: field 'action'",
        ),
        (
            "consents.toml",
            lambda t: t.replace('retain_after_erasure = "3 years"\n', ""),
            "consents.toml: field 'retain_after_erasure'",
        ),
        ("feedback.toml", lambda t: t + "colour = 'blue'\n", "feedback.toml: unknown field"),
        ("feedback.toml", lambda t: t.replace("=", ":", 1), "feedback.toml: not valid TOML"),
        (
            "disclosures.toml",
            lambda t: t.replace('trigger = "disclosure_listed"', 'trigger = "whenever"'),
            "disclosures.toml: field 'trigger'",
        ),
        (
            "profile.toml",
            lambda t: t.replace('period = "30 days"', 'period = "0 days"'),
            "profile.toml: field 'period'",
        ),
        (
            "profile.toml",
            lambda t: t.replace('trigger = "account_closed"', 'trigger = "score_computed"'),
            "profile.toml: field 'trigger': members cannot tell when 'score_computed' happened",
        ),
        (
            "feedback.toml",
            lambda t: t.replace('trigger = "record_recorded"', 'trigger = "consent_ended"'),
            "feedback.toml: field 'trigger': feedback cannot tell when 'consent_ended'",
        ),
        (
            "profile.toml",
            lambda t: t.replace('action = "delete"', 'action = "anonymise"'),
            "profile.toml: field 'action': members cannot be anonymised",
        ),
        (
            "webhook_deliveries.toml",
            lambda t: t.replace('action = "delete"', 'action = "anonymise"'),
            "webhook_deliveries.toml: field 'action': deliveries cannot be anonymised",
        ),
        (
            "notices.toml",
            lambda t: t.replace('period = "12 months"', 'period = "9999 years"'),
            "notices.toml: field 'period'",
        ),
    ],
)
def test_malformed_policy_names_file_and_field(policy_dir, file, edit, expected):
    path = policy_dir / file
    path.write_text(edit(path.read_text()))
    with pytest.raises(PolicyError, match=expected.replace("(", r"\(")):
        load_policies(policy_dir)


def test_missing_and_stray_policy_files(policy_dir):
    (policy_dir / "promotions.toml").unlink()
    with pytest.raises(PolicyError, match=r"promotions.toml: missing"):
        load_policies(policy_dir)


def test_lethes_own_records_need_their_policies_too(policy_dir):
    (policy_dir / "receipts.toml").unlink()
    with pytest.raises(PolicyError, match=r"receipts.toml: missing \(Lethe's receipts\)"):
        load_policies(policy_dir)


def test_a_malformed_policy_stops_start_up_naming_file_and_field(policy_dir, monkeypatch, tmp_path):
    path = policy_dir / "tombstones.toml"
    path.write_text(path.read_text().replace('action = "delete"', 'action = "forget"'))
    monkeypatch.setattr(policies_module, "POLICY_DIR", policy_dir)
    policies.cache_clear()
    try:
        with pytest.raises(PolicyError, match="tombstones.toml: field 'action'"):
            create_app(instance_path=str(tmp_path))
    finally:
        policies.cache_clear()


def test_stray_policy_file_is_refused(policy_dir):
    text = (policy_dir / "profile.toml").read_text().replace('"profile"', '"pets"')
    (policy_dir / "pets.toml").write_text(text)
    with pytest.raises(PolicyError, match="pets.toml: field 'category'"):
        load_policies(policy_dir)


def test_layers_point_down():
    """docs/design.md: storage <- retention_policies <- rights <- demo <- web/cli; nothing
    imports web; inside rights/, the areas point down. Every contract is kept, none ignored."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert f"{len(contracts['contracts'])} kept, 0 broken" in result.stdout
    assert len(contracts["contracts"]) >= 3
    assert "ignored" not in result.stdout
