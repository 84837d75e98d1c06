"""Encryption at rest, the separate key store, blind indexes, tz-aware time, migrations."""

import os
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from app import create_app
from demo import loader as demo
from rights.holdings import subjects
from storage import vault
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import Member, Subject, SubjectKey
from tests.conftest import PG_URL, make_config


def _sqlite_bytes(url: str) -> bytes:
    path = Path(url.removeprefix("sqlite:///"))
    data = path.read_bytes()
    for extra in (Path(f"{path}-wal"), Path(f"{path}-journal")):
        if extra.exists():
            data += extra.read_bytes()
    return data


def _database_contents(app) -> bytes:
    """Every byte the main database holds: the file itself on SQLite, every row as text on
    PostgreSQL (bytea shows as hex, so only plain text can match)."""
    with app.app_context():
        if not PG_URL:
            db.engines[None].dispose()
            return _sqlite_bytes(app.config["SQLALCHEMY_DATABASE_URI"])
        out = []
        with db.engines[None].connect() as conn:
            for table in db.metadatas[None].sorted_tables:
                rows = conn.execute(text(f"SELECT CAST(t AS text) FROM {table.name} t"))
                out.extend(r[0] for r in rows)
        return "\n".join(out).encode()


def test_database_holds_no_plain_personal_data(app):
    with app.app_context():
        demo.load(extra_members=20)
        db.session.commit()
    raw = _database_contents(app)
    for needle in (
        b"@example.com",
        b"sam.rivera",
        b"Sam Rivera",
        b"Rivera",
        b"Springfield",
        b"just won",
    ):
        assert needle not in raw, needle
    assert b"fulfilment-sync" in raw  # provenance is not personal data and stays readable


def test_subject_keys_live_only_in_the_key_store(app):
    with app.app_context():
        demo.load(extra_members=2)
        db.session.commit()
        main_tables = inspect(db.engines[None]).get_table_names()
        key_tables = inspect(db.engines["keystore"]).get_table_names()
        assert "subject_keys" not in main_tables
        assert "subject_keys" in key_tables and "members" not in key_tables
        n_subjects = db.session.execute(select(db.func.count(Subject.id))).scalar_one()
        n_keys = db.session.execute(select(db.func.count(SubjectKey.subject_id))).scalar_one()
        assert n_subjects == n_keys == 4  # three members, and a stranger's erasure request


def test_ciphertext_is_bound_to_its_subject_and_column(app):
    with app.app_context():
        demo.load(extra_members=2)
        db.session.commit()
        a, b = db.session.execute(select(Member).order_by(Member.id).limit(2)).scalars()
        assert vault.decrypt(a.subject_id, "members.email_enc", a.email_enc) == demo.STORY_EMAIL
        with pytest.raises(Exception):  # noqa: B017 - InvalidTag: another subject's key
            vault.decrypt(b.subject_id, "members.email_enc", a.email_enc)
        with pytest.raises(Exception):  # noqa: B017 - another column's context
            vault.decrypt(a.subject_id, "members.name_enc", a.email_enc)


def test_lost_key_makes_data_unreadable(app):
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        member = db.session.execute(select(Member).order_by(Member.id)).scalars().first()
        db.session.execute(
            SubjectKey.__table__.delete().where(SubjectKey.subject_id == member.subject_id)
        )
        db.session.commit()
        vault.forget_cached_key(member.subject_id)
        with pytest.raises(vault.KeyMissing):
            vault.decrypt(member.subject_id, "members.email_enc", member.email_enc)


def test_blind_index_finds_by_email_case_insensitively(app):
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        assert subjects.by_email("  SAM.Rivera@Example.COM ") is not None
        assert subjects.by_email("sam.rivera@example.org") is None
        idx = vault.blind_index(demo.STORY_EMAIL)
        assert len(idx) == 64 and demo.STORY_EMAIL not in idx


def test_blind_index_depends_on_the_secret_key(app_factory, tmp_path):
    app = app_factory()
    with app.app_context():
        first = vault.blind_index("a@example.org")
    other = create_app(make_config(tmp_path / "other", 25), instance_path=str(tmp_path / "o"))
    with other.app_context():
        assert vault.blind_index("a@example.org") != first


def test_timestamps_come_back_aware_utc(app):
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        db.session.expire_all()
        member = db.session.execute(select(Member)).scalars().first()
        assert member.recorded_at.tzinfo is not None
        assert member.recorded_at.utcoffset().total_seconds() == 0
        with pytest.raises(Exception, match="naive"):
            member.closed_at = datetime(2026, 1, 1)
            db.session.flush()
        db.session.rollback()


def _throwaway_urls(tmp_path):
    if not PG_URL:
        return (f"sqlite:///{tmp_path / 'mig.db'}", f"sqlite:///{tmp_path / 'mig-keys.db'}"), None
    name = f"lethe_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        for db_name in (name, name + "_keys"):
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    return (f"{base}/{name}", f"{base}/{name}_keys"), (admin, name)


def test_migrations_build_the_schema_the_models_declare(tmp_path, smtp_server):
    (main_url, keys_url), cleanup = _throwaway_urls(tmp_path)
    cfg = make_config(
        tmp_path, smtp_server.port, SQLALCHEMY_DATABASE_URI=main_url, KEYSTORE_URL=keys_url
    )
    app = create_app(cfg, instance_path=str(tmp_path / "instance"))
    try:
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            for bind in (None, "keystore"):
                with db.engines[bind].connect() as conn:
                    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
                    diff = compare_metadata(ctx, db.metadatas[bind])
                    assert diff == [], (bind, diff)
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
    finally:
        if cleanup:
            admin, name = cleanup
            with admin.connect() as conn:
                for db_name in (name, name + "_keys"):
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()


def test_env_var_is_not_read_in_tests(monkeypatch, tmp_path, smtp_server):
    monkeypatch.setenv("LETHE_DATABASE_URL", "sqlite:////nonexistent/x.db")
    app = create_app(make_config(tmp_path, smtp_server.port), instance_path=str(tmp_path / "i"))
    assert "nonexistent" not in app.config["SQLALCHEMY_DATABASE_URI"]
    assert os.environ["LETHE_DATABASE_URL"]


def test_data_map_covers_every_table_holding_a_subjects_rows():
    """The data map is the one list of where personal data lives: any table with a
    subject_id must be in it (record_history is read as part of each record)."""
    with_subject = {
        table.name for table in db.metadatas[None].sorted_tables if "subject_id" in table.c
    }
    mapped = {c.table for c in CATEGORIES}
    # erasure_runs holds only ids, a step and counts: the state of a job, no personal data;
    # legal_holds names whose records are held, with an officer's reason.
    assert with_subject - {"record_history", "erasure_runs", "legal_holds"} == mapped
