"""Shred epochs (issue 13): subject keys wrapped under the current epoch's key; at the end of an
epoch every surviving key is re-wrapped and the old epoch key destroyed, so no copy of an erased
key — the table's old row versions, the write-ahead log, a backup — can be unwrapped any more."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from freezegun import freeze_time
from sqlalchemy import func, insert, select, text

from rights.erasure import erasure, shredding, statements
from rights.ledger import signing
from rights.lifecycle import requests
from storage import epochs, shred, vault
from storage.clock import utcnow
from storage.db import db
from storage.models import KeyEpoch, Member, SubjectKey
from tests import factories
from tests.conftest import PG_KEYS_URL, PG_URL
from tests.helpers import deliver
from tests.processes import server_env

FREEZE = {"ignore": ["asyncio", "aiosmtpd"]}


def _members(app, n: int) -> dict[str, str]:
    """n members; their subject ids -> their decrypted names (what must survive a shred)."""
    with app.app_context():
        for i in range(1, n + 1):
            factories.member(i)
        factories.commit()
        rows = db.session.execute(select(Member)).scalars().all()
        return {
            m.subject_id: vault.decrypt(m.subject_id, "members.name_enc", m.name_enc) for m in rows
        }


def _names_now(app) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(select(Member)).scalars().all()
        return {
            m.subject_id: vault.decrypt(m.subject_id, "members.name_enc", m.name_enc) for m in rows
        }


def _erase_member(app, external_id: str) -> str:
    with app.app_context():
        req = requests.file(
            type="erasure", member_id=external_id, channel="api", verified=True, actor="t"
        )
        db.session.commit()
        request_id = req.id
    with app.app_context():
        erasure.run(request_id)
    return request_id


def test_new_keys_are_wrapped_under_the_current_epoch(app):
    names = _members(app, 3)
    with app.app_context():
        epoch = epochs.current()
        rows = db.session.execute(select(SubjectKey)).scalars().all()
        assert {r.subject_id for r in rows} == set(names)
        assert {r.epoch_id for r in rows} == {epoch.id}
        # Not under the key-encryption key any more.
        kek = AESGCM(base64.urlsafe_b64decode(app.config["KEY_ENCRYPTION_KEY"]))
        for r in rows:
            with pytest.raises(InvalidTag):
                kek.decrypt(r.wrapped_key[:12], r.wrapped_key[12:], r.subject_id.encode())
        # An epoch ends at the next UTC midnight (SHRED_EPOCH_HOURS = 24).
        assert epoch.ends_at > epoch.started_at
        assert epoch.ends_at - epoch.started_at <= timedelta(hours=24)
        assert (epoch.ends_at.hour, epoch.ends_at.minute, epoch.ends_at.second) == (0, 0, 0)


def test_a_shred_rewraps_survivors_and_destroys_the_erased_keys_epoch(app):
    names = _members(app, 4)
    with app.app_context():
        first = epochs.current().id
        sam = db.session.execute(select(Member).where(Member.external_id == "m-1")).scalar_one()
        sam_id = sam.subject_id
        sam_blob = db.session.get(SubjectKey, sam_id).wrapped_key
    _erase_member(app, "m-1")
    with app.app_context():
        assert db.session.get(SubjectKey, sam_id) is None
        # The erased key's copy (as a backup or the WAL would keep it) still opens today...
        assert len(epochs.unwrap_blob(sam_id, first, sam_blob)) == 32
        result = shredding.shred_now(batch=2)
        assert result["done"] and result["destroyed"] == [first]
        assert result["rewrapped"] == 3
    with app.app_context():
        # ...and never again: its epoch key is gone from the key manager.
        with pytest.raises(epochs.EpochGone):
            epochs.unwrap_blob(sam_id, first, sam_blob)
        assert not epochs.store().exists(first)
        alive = epochs.alive()
        assert [e.state for e in alive] == ["current"] and alive[0].id != first
        assert db.session.get(KeyEpoch, first).state == "destroyed"
        rows = db.session.execute(select(SubjectKey)).scalars().all()
        assert {r.epoch_id for r in rows} == {alive[0].id}
        audit = db.session.execute(
            text("SELECT count(*) FROM audit_events WHERE action = 'keys.epoch_destroyed'")
        ).scalar_one()
        assert audit == 1
    # Everyone else's data reads as before.
    survivors = {k: v for k, v in names.items() if k != sam_id}
    assert _names_now(app) == survivors


def test_never_more_than_two_epoch_keys(app):
    _members(app, 3)
    with app.app_context():
        first = epochs.current().id
        old = shred.begin()
        db.session.commit()
        assert old.id == first
        # A second begin while the first shred is unfinished opens no third epoch.
        assert shred.begin().id == first
        db.session.commit()
        assert len(epochs.alive()) == 2
        assert sorted(epochs.store().list_epochs()) == sorted(e.id for e in epochs.alive())
        # "Now" finishes the shred left half-way, and then ends the current epoch too.
        result = shredding.shred_now()
        assert result["destroyed"][0] == first and len(result["destroyed"]) == 2
        assert len(epochs.alive()) == 1
        assert len(epochs.store().list_epochs()) == 1


def test_keys_from_before_epochs_move_into_the_first_epoch(app):
    """What the migration leaves: keys wrapped under the key-encryption key (epoch_id NULL)."""
    names = _members(app, 3)
    kek = AESGCM(base64.urlsafe_b64decode(app.config["KEY_ENCRYPTION_KEY"]))
    with app.app_context():
        for row in db.session.execute(select(SubjectKey)).scalars():
            key = epochs.unwrap_rows([row])[row.subject_id]
            nonce = os.urandom(12)
            row.wrapped_key = nonce + kek.encrypt(nonce, key, row.subject_id.encode())
            row.epoch_id = None
        db.session.commit()
    assert _names_now(app) == names  # still readable as they are
    with app.app_context():
        assert shred.due()
        assert shredding.run_if_due()
        assert db.session.execute(
            select(func.count()).select_from(SubjectKey).where(SubjectKey.epoch_id.is_(None))
        ).scalar_one() == 0
        assert not shred.due()
    assert _names_now(app) == names


def test_the_worker_shreds_when_the_epoch_has_ended(app):
    names = _members(app, 2)
    with app.app_context():
        first = epochs.current()
        first_id, ends_at = first.id, first.ends_at
    with freeze_time(ends_at - timedelta(seconds=1), **FREEZE):
        deliver(app)
        with app.app_context():
            assert epochs.current().id == first_id
    with freeze_time(ends_at + timedelta(seconds=1), **FREEZE):
        deliver(app)
        with app.app_context():
            assert db.session.get(KeyEpoch, first_id).state == "destroyed"
            assert epochs.current().ends_at == ends_at + timedelta(hours=24)
    assert _names_now(app) == names


def test_the_receipt_and_the_statement_say_when_no_copy_can_be_read(app, client):
    _members(app, 2)
    with app.app_context():
        epoch = epochs.current()
        epoch_id, ends_at = epoch.id, epoch.ends_at
    request_id = _erase_member(app, "m-1")
    with app.app_context():
        receipt = erasure.receipt_for(requests.get(request_id))
        claims = signing.claims_of(receipt.jws)
        assert claims["key_epoch"] == epoch_id
        assert claims["unrecoverable_after"] == ends_at.isoformat()
        _, stated = statements.issue(receipt)
        assert stated["unrecoverable_after"] == ends_at.isoformat()
        assert stated["unrecoverable"] is False
        shredding.shred_now()
        _, stated = statements.issue(receipt)
        assert stated["unrecoverable"] is True and stated["unrecoverable_since"]


def _many_keys(app, n: int) -> dict[str, bytes]:
    """n subject keys (no members: the key store alone), made the fast way; id -> key."""
    made = {str(uuid.uuid4()): os.urandom(32) for _ in range(n)}
    with app.app_context():
        epoch = epochs.current()
        items = list(made.items())
        for start in range(0, n, 1000):
            chunk = items[start : start + 1000]
            wrapped = epochs.store().wrap_many(
                epoch.id, [(key, epochs._aad(sid, epoch.id)) for sid, key in chunk]
            )
            db.session.execute(
                insert(SubjectKey),
                [
                    {"subject_id": sid, "wrapped_key": w, "epoch_id": epoch.id}
                    for (sid, _), w in zip(chunk, wrapped, strict=True)
                ],
            )
        db.session.commit()
    return made


def test_a_shred_killed_mid_way_resumes_and_loses_no_key(app):
    """kill -9 during re-wrapping, then a rerun: no key lost, none left under the old epoch,
    every key the same key."""
    n = 20_000
    made = _many_keys(app, n)
    with app.app_context():
        first = epochs.current().id
    env = server_env(app)
    env["LETHE_INSTANCE_PATH"] = app.instance_path
    cmd = [
        str(Path(sys.executable).parent / "flask"),
        "--app",
        "tests.processes:make_app()",
        "keys",
        "shred",
        "--batch",
        "20",
    ]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, env=env)  # noqa: S603 - our own command
    deadline = time.monotonic() + 60
    moved = 0
    while time.monotonic() < deadline and moved < 200 and proc.poll() is None:
        time.sleep(0.02)
        with app.app_context():
            moved = db.session.execute(
                select(func.count())
                .select_from(SubjectKey)
                .where(SubjectKey.epoch_id.is_not(None), SubjectKey.epoch_id != first)
            ).scalar_one()
            db.session.rollback()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with app.app_context():
        by_epoch = dict(
            db.session.execute(
                select(SubjectKey.epoch_id, func.count()).group_by(SubjectKey.epoch_id)
            ).all()
        )
        assert by_epoch.get(first, 0) > 0, f"killed too late: nothing left ({by_epoch})"
        assert len(by_epoch) == 2 and sum(by_epoch.values()) == n  # nothing lost mid-way
        assert epochs.store().exists(first)  # not destroyed while keys are under it
    rerun = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)  # noqa: S603
    assert rerun.returncode == 0, rerun.stderr
    with app.app_context():
        assert db.session.get(KeyEpoch, first).state == "destroyed"
        rows = db.session.execute(select(SubjectKey)).scalars().all()
        assert len(rows) == n and {r.epoch_id for r in rows} == {epochs.current().id}
        assert epochs.unwrap_rows(rows) == made


def _close_all(app) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()  # checkpoints the log into the file: one file is the backup


def _restore(path: Path, backup: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copy(backup, path)


@pytest.mark.skipif(bool(PG_URL), reason="restores SQLite files as backups")
def test_restoring_a_key_store_backup_from_before_a_shred(app, tmp_path):
    """A key-store backup taken before an epoch ended holds keys wrapped under that epoch's
    key: once it is destroyed, those subjects are unreadable, and the tombstone replay erases
    the erased person's rows (brought back by an old main database) as it always did."""
    _members(app, 3)
    with app.app_context():
        main = Path(db.engines[None].url.database)
        keys = Path(db.engines["keystore"].url.database)
        erased = db.session.execute(
            select(Member.subject_id).where(Member.external_id == "m-1")
        ).scalar_one()
        kept = db.session.execute(
            select(Member.subject_id).where(Member.external_id == "m-2")
        ).scalar_one()
    _close_all(app)
    shutil.copy(main, tmp_path / "main-before-erasure.db")
    _erase_member(app, "m-1")
    _close_all(app)
    shutil.copy(keys, tmp_path / "keys-after-erasure.db")  # the tombstone is in it
    with app.app_context():
        shredding.shred_now()  # the epoch ends: its key is destroyed
    _close_all(app)
    _restore(main, tmp_path / "main-before-erasure.db")
    _restore(keys, tmp_path / "keys-after-erasure.db")
    with app.app_context():
        # The old main database brought the erased member back; their key is not there, and
        # the others' keys are wrapped under an epoch whose key is gone. Until an operator
        # says it was a restore, that is an error, never taken for an erasure.
        assert db.session.execute(
            select(func.count()).select_from(Member).where(Member.subject_id == erased)
        ).scalar_one() == 1
        with pytest.raises(epochs.EpochGone):
            vault.subject_key(kept)
        db.session.rollback()
        # A shred refuses to drop keys it cannot read: that is for the operator to say.
        with pytest.raises(epochs.EpochGone):
            shredding.shred_now()
        db.session.rollback()
        # The key store recovers: the dead keys are dropped, a new epoch takes new keys, and
        # the epoch key the restored key store never heard of is destroyed too.
        result = shredding.recover()
        assert result["unreadable_keys"] == 2 and len(result["epochs_lost"]) == 1
        assert len(result["orphans_destroyed"]) == 1
        assert len(epochs.store().list_epochs()) <= 2
        with pytest.raises(vault.KeyMissing):
            vault.subject_key(kept)
        counts = erasure.replay()
        assert counts["subjects"] == 1
        assert db.session.execute(
            select(func.count()).select_from(Member).where(Member.subject_id == erased)
        ).scalar_one() == 0
        assert db.session.execute(select(func.count()).select_from(SubjectKey)).scalar_one() == 0
        factories.member(9)
        factories.commit()
        m9 = db.session.execute(select(Member).where(Member.external_id == "m-9")).scalar_one()
        assert vault.decrypt(m9.subject_id, "members.name_enc", m9.name_enc) == "Person 9"


def test_epoch_boundaries(app):
    with app.app_context(), freeze_time("2026-11-29T13:45:00Z"):
        assert epochs.next_end(utcnow()).isoformat() == "2026-11-30T00:00:00+00:00"
    with app.app_context(), freeze_time("2026-11-29T00:00:00Z"):
        assert epochs.next_end(utcnow()).isoformat() == "2026-11-30T00:00:00+00:00"


def _pkcs11_app(app_factory, softhsm):
    return app_factory(
        EPOCH_KEY_BACKEND="pkcs11",
        PKCS11_MODULE=softhsm.module,
        PKCS11_TOKEN_LABEL=softhsm.label,
        PKCS11_PIN=softhsm.pin,
    )


def test_with_a_pkcs11_token_the_old_epoch_key_is_destroyed_in_the_token(softhsm, app_factory):
    app = _pkcs11_app(app_factory, softhsm)
    names = _members(app, 3)
    with app.app_context():
        first = epochs.current()
        assert first.backend == "pkcs11"
        first_id = first.id
        assert epochs.store().list_epochs() == [first_id]
    _erase_member(app, "m-1")
    with app.app_context():
        result = shredding.shred_now()
        assert result["destroyed"] == [first_id]
        assert first_id not in epochs.store().list_epochs()
        assert len(epochs.store().list_epochs()) == 1
    assert len(_names_now(app)) == len(names) - 1


@pytest.mark.skipif(not PG_URL, reason="reproduces a PostgreSQL finding")
@pytest.mark.serial  # reads the server's whole pg_wal, which other workers' tests write to
def test_on_postgresql_the_erased_key_left_in_heap_and_wal_opens_nothing_after_a_shred(
    softhsm, app_factory
):
    """The outside test's finding, reproduced: after an erasure and a CHECKPOINT the member's
    wrapped key is still in the key store's table file and in pg_wal. After `flask keys shred`
    the same bytes open with nothing Lethe or the token holds."""
    if not PG_KEYS_URL:
        pytest.skip("needs the key store on PostgreSQL (LETHE_TEST_KEYSTORE_URL)")
    app = _pkcs11_app(app_factory, softhsm)
    _members(app, 3)
    with app.app_context():
        sam = db.session.execute(select(Member).where(Member.external_id == "m-1")).scalar_one()
        sam_id = sam.subject_id
        row = db.session.get(SubjectKey, sam_id)
        blob, epoch_id = row.wrapped_key, row.epoch_id
    _erase_member(app, "m-1")
    with app.app_context():
        engine = db.engines["keystore"]
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
            heap = conn.exec_driver_sql(
                "SELECT pg_read_binary_file(pg_relation_filepath('subject_keys'))"
            ).scalar_one()
            # Every file in pg_wal: a checkpoint may recycle the segment that holds the insert
            # under a new name, with its old content.
            wal_names = conn.exec_driver_sql(
                "SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"
            ).scalars()
            wal = b"".join(
                conn.exec_driver_sql(
                    "SELECT pg_read_binary_file('pg_wal/' || %(n)s)", {"n": name}
                ).scalar_one()
                for name in list(wal_names)
            )
        assert blob in heap or blob in wal  # deleting the row did not destroy the key
        assert blob in wal
        # Today it still opens:
        assert len(epochs.unwrap_blob(sam_id, epoch_id, blob)) == 32
        result = app.test_cli_runner().invoke(args=["keys", "shred"])
        assert result.exit_code == 0, result.output
        assert epoch_id in result.output
        # After the shred: the same bytes open with nothing Lethe or the token holds.
        with pytest.raises(epochs.EpochGone):
            epochs.unwrap_blob(sam_id, epoch_id, blob)
        assert epoch_id not in epochs.store().list_epochs()
        kek = AESGCM(base64.urlsafe_b64decode(app.config["KEY_ENCRYPTION_KEY"]))
        with pytest.raises(InvalidTag):
            kek.decrypt(blob[:12], blob[12:], sam_id.encode())
        for other in epochs.store().list_epochs():
            with pytest.raises(Exception):  # noqa: B017 - any refusal: no key opens it
                epochs.store().unwrap(other, blob, epochs._aad(sam_id, other))


def test_the_erasure_page_says_in_words_when_no_copy_can_be_read(app, client, mailbox):
    import re

    # The member (and the shred epoch their key is wrapped in) before the request, on the same
    # frozen clock: made on the real clock, the epoch began after the frozen request once the
    # real time passed it (this failed on 29 November 2026 after 15:00 UTC).
    with freeze_time("2026-11-29T14:59:00Z", **FREEZE):
        _members(app, 1)
    with freeze_time("2026-11-29T15:00:00Z", **FREEZE):
        client.post("/requests/new", data={"type": "erasure", "email": "person1@example.org"})
        deliver(app)
        body = mailbox.body(mailbox.last_to("person1@example.org"))
        path = re.search(r"http://lethe\.test(/verify/\S+)", body).group(1)
        status_url = client.post(path).headers["Location"]
        deliver(app)  # the worker erases
        page = client.get(status_url).get_data(as_text=True)
        assert "destroyed soon after tomorrow at 00:00 UTC" in page
        with app.app_context():
            shredding.shred_now()
        page = client.get(status_url).get_data(as_text=True)
        assert "has been destroyed: no copy of it anywhere" in page


def test_a_shred_started_while_another_rewraps_waits_and_loses_no_key(app):
    """Review finding: a batch of keys from before epochs was being wrapped under epoch E1
    while a forced shred moved every key and destroyed E1; the batch then wrote its keys
    under the destroyed epoch. A batch now holds the epochs lock (shared) until it commits,
    and only moves rows still where it read them."""
    import threading

    names = _members(app, 3)
    kek = AESGCM(base64.urlsafe_b64decode(app.config["KEY_ENCRYPTION_KEY"]))
    with app.app_context():
        for row in db.session.execute(select(SubjectKey)).scalars():
            key = epochs.unwrap_rows([row])[row.subject_id]
            nonce = os.urandom(12)
            row.wrapped_key = nonce + kek.encrypt(nonce, key, row.subject_id.encode())
            row.epoch_id = None
        db.session.commit()
    other: dict = {}

    def forced_shred():
        with app.app_context():
            other["result"] = shredding.shred_now()

    with app.app_context():
        store = epochs.store()
        real = store.wrap_many
        started = threading.Event()

        def wrap_many_then_race(epoch_id, items):
            out = real(epoch_id, items)
            if not started.is_set():
                started.set()
                thread = threading.Thread(target=forced_shred)
                thread.start()
                thread.join(timeout=1.0)  # it must wait for this batch's commit
                other["waited"] = thread.is_alive()
                other["thread"] = thread
            return out

        store.wrap_many = wrap_many_then_race
        try:
            shred.rewrap_batch(None, batch=10)
            db.session.commit()
        finally:
            store.wrap_many = real
    other["thread"].join(timeout=60)
    assert other["waited"], "the forced shred did not wait for the batch"
    assert other["result"]["done"]
    assert _names_now(app) == names
