"""The transparency log (issue 18): receipts, statements and audit checkpoints appended to an
RFC 9162 Merkle tree by the worker's sequencer; C2SP signed checkpoints; inclusion and
consistency proofs served under /.well-known/transparency/ and checked here with the tests'
own verifiers (tests/test_merkle.py's reference, written from the RFC), not the production
code; failure modes (a tampered, removed or reordered leaf, a fork, a truncated log)."""

import base64
import hashlib

import pytest
from sqlalchemy import func, select

from config import ConfigError
from rights import jobs
from rights.erasure import erasure, statements
from rights.ledger import audit_checkpoints, signed_note, transparency
from rights.lifecycle import requests
from storage.db import db
from storage.models import LogCheckpoint, LogLeaf, LogNode, LogPending
from tests import factories
from tests.test_merkle import ref_verify_inclusion

LOG = "/.well-known/transparency"


def _leaf(jws: str) -> bytes:
    """RFC 9162 leaf hash of the document's entry, computed here from the definition."""
    return hashlib.sha256(b"\x00" + hashlib.sha256(jws.encode("ascii")).digest()).digest()


def _erase(n: int):
    """Member n erased (the run to its receipt, committed): the receipt."""
    factories.member(n)
    factories.commit()
    req = requests.file(
        type="erasure", member_id=f"m-{n}", channel="api", verified=True, actor="apikey:platform"
    )
    db.session.commit()
    return erasure.run(req.id)


def _queue_documents(count: int, kind: str = "statement") -> list[str]:
    """Stand-ins for signed documents: distinct strings queued as the issuers queue theirs."""
    docs = [f"doc.{kind}.{i}" for i in range(count)]
    for doc in docs:
        transparency.queue(doc, kind)
    db.session.commit()
    return docs


def _checkpoint(client) -> signed_note.Checkpoint:
    resp = client.get(f"{LOG}/checkpoint")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    keys = client.get(f"{LOG}/keys").get_data(as_text=True).split()
    body, signers = signed_note.open_note(resp.get_data(as_text=True), keys)
    assert signers
    return signed_note.parse_checkpoint(body)


def _inclusion(client, leaf: bytes, size: int | None = None):
    query = f"leaf={leaf.hex()}" + (f"&size={size}" if size else "")
    return client.get(f"{LOG}/proof/inclusion?{query}")


def test_a_receipt_is_appended_by_the_worker_and_its_proof_checks_out(app, client):
    with app.app_context():
        jws = _erase(1).jws
        assert transparency.placement(jws).index is None  # queued, not yet appended
        counts = jobs.run_due(roles=["jobs"])
        assert counts["log_appended"] >= 1
        placement = transparency.placement(jws)
        assert placement.checked and placement.index is not None
    checkpoint = _checkpoint(client)
    resp = _inclusion(client, _leaf(jws))
    assert resp.status_code == 200
    proof = resp.get_json()
    assert proof["tree_size"] == checkpoint.size
    path = [base64.b64decode(h) for h in proof["inclusion_path"]]
    assert ref_verify_inclusion(
        _leaf(jws), proof["leaf_index"], checkpoint.size, path, checkpoint.root
    )


def test_statements_and_audit_checkpoints_are_appended_too(app):
    with app.app_context():
        receipt = _erase(1)
        record_key = erasure.reveal_record_key(receipt)
        db.session.commit()
        statement, _ = statements.for_record_key(record_key)
        db.session.commit()
        checkpoint = audit_checkpoints.write()
        db.session.commit()
        jobs.run_due(roles=["jobs"])
        kinds = dict(db.session.execute(select(LogLeaf.leaf_hash, LogLeaf.kind)).all())
        assert kinds[_leaf(receipt.jws)] == "receipt"
        assert kinds[_leaf(statement)] == "statement"
        assert kinds[_leaf(checkpoint.jws)] == "audit-checkpoint"
        assert db.session.execute(select(func.count(LogPending.id))).scalar_one() == 0


# --- the pages ---------------------------------------------------------------------------

from tests.test_receipt_pages import VERIFY, _own_page, _text  # noqa: E402
from tests.test_receipt_pages import erased as erased  # noqa: E402, F401 - the fixture


def test_the_receipt_page_and_the_verification_page_say_where_the_log_has_it(app, erased):
    client, resp = _own_page(app, erased)
    text = _text(resp)
    assert "It is being added to our public log" in text  # queued: the worker has not run
    resp = client.post(VERIFY, data={"document": erased["receipt"]})
    assert "It is being added to our public log" in _text(resp)

    with app.app_context():
        jobs.run_due(roles=["jobs"])
        head = transparency.latest()
        index = db.session.execute(
            select(LogLeaf.index).where(LogLeaf.leaf_hash == _leaf(erased["receipt"]))
        ).scalar_one()
    said = (
        f"It is in our public log of everything we sign, at position {index + 1} of "
        f"{head.size}, and we have just checked the proof of it"
    )
    _, resp = _own_page(app, erased)
    assert said in _text(resp)
    resp = client.post(VERIFY, data={"document": erased["receipt"]})
    assert said in _text(resp)
    # The statement the fixture signed is in the log too.
    resp = client.post(VERIFY, data={"document": erased["statement"]})
    assert "It is in our public log" in _text(resp)


def test_a_receipt_whose_proof_fails_is_called_out_on_the_page(app, erased):
    with app.app_context():
        _queue_documents(3)  # a tree of several leaves: the receipt's proof has a path
        jobs.run_due(roles=["jobs"])
        index = db.session.execute(
            select(LogLeaf.index).where(LogLeaf.leaf_hash == _leaf(erased["receipt"]))
        ).scalar_one()
        # Someone with the key store's rows rewrites the rest of the tree.
        db.session.execute(
            LogNode.__table__.update()
            .where(~((LogNode.level == 0) & (LogNode.idx == index)))
            .values(hash=b"\x00" * 32)
        )
        db.session.commit()
    client = app.test_client()
    resp = client.post(VERIFY, data={"document": erased["receipt"]})
    assert "the proof of it does not check out" in _text(resp)


def test_a_document_the_log_never_saw_is_said_so(app, client):
    with app.app_context():
        assert transparency.placement("not.a.document") is None
        transparency.queue("not.a.document", "statement")
        db.session.commit()
        assert transparency.placement("not.a.document").index is None
        jobs.run_due(roles=["jobs"])
        placement = transparency.placement("not.a.document")
        assert (placement.index, placement.size, placement.checked) == (0, 1, True)
        assert placement.position == 1
        assert db.session.execute(select(func.count(LogCheckpoint.size))).scalar_one() == 1


# --- the log's name ----------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["has space", "a+b", "", "tab\there"])
def test_a_malformed_log_origin_stops_the_start(app_factory, origin):
    with pytest.raises(ConfigError, match="TRANSPARENCY_ORIGIN"):
        app_factory(TRANSPARENCY_ORIGIN=origin)


def test_a_log_name_made_from_a_public_url_that_cannot_be_one_stops_the_start(app_factory):
    with pytest.raises(ConfigError, match="made from LETHE_PUBLIC_URL"):
        app_factory(PUBLIC_URL="https://privacy.example.com/a+b")


def test_the_logs_name_is_fixed_by_its_first_checkpoint(app_factory):
    """Found by review: a change of PUBLIC_URL (or a worker with other settings) renamed the
    log, and every witness's keys stopped verifying its checkpoints."""
    first = app_factory(TRANSPARENCY_ORIGIN="privacy.example.com/log")
    with first.app_context():
        _queue_documents(2)
        jobs.run_due(roles=["jobs"])
    first.config["TRANSPARENCY_ORIGIN"] = "www.example.com/log"  # configured otherwise now
    with first.app_context():
        transparency.queue("one.more.document", "statement")
        db.session.commit()
        jobs.run_due(roles=["jobs"])
        note = transparency.latest().note
        assert note.startswith("privacy.example.com/log\n3\n")
        keys = transparency.verifier_keys()
        assert all(k.startswith("privacy.example.com/log+") for k in keys)
        assert signed_note.open_note(note, keys)[1] == ["privacy.example.com/log"]


def test_the_origin_names_the_log_and_its_signer(app_factory):
    app = app_factory(TRANSPARENCY_ORIGIN="privacy.example.com/log")
    with app.app_context():
        _queue_documents(2)
        jobs.run_due(roles=["jobs"])
        note = transparency.latest().note
        assert note.startswith("privacy.example.com/log\n2\n")
        assert "\n\n\u2014 privacy.example.com/log " in note
        assert all(k.startswith("privacy.example.com/log+") for k in transparency.verifier_keys())


# --- the API -----------------------------------------------------------------------------


def test_the_api_says_where_the_log_has_a_completed_erasures_receipt(app, client):
    from rights.ledger import apikeys

    scopes = ["requests:write", "requests:verified", "requests:read"]
    with app.app_context():
        _, key = apikeys.create("platform", scopes, actor="t")
        factories.member(1)
        factories.commit()
    headers = {"Authorization": f"Bearer {key}"}
    resp = client.post(
        "/api/v1/requests",
        json={"type": "erasure", "member_id": "m-1", "verified": True},
        headers=headers,
    )
    assert resp.status_code == 201, resp.get_json()
    request_id = resp.get_json()["id"]
    with app.app_context():
        # One round: the erasure's job signs and queues the receipt, the sequencer appends it.
        jobs.run_due(roles=["jobs"])
    result = client.get(f"/api/v1/requests/{request_id}", headers=headers).get_json()["result"]
    placed = result["transparency_log"]
    assert placed["leaf_hash"] == _leaf(result["receipt"]).hex()
    assert placed["leaf_index"] is not None and placed["tree_size"] > placed["leaf_index"]
    proof = _inclusion(client, bytes.fromhex(placed["leaf_hash"]), placed["tree_size"]).get_json()
    assert proof["leaf_index"] == placed["leaf_index"]


# --- /metrics ------------------------------------------------------------------------------


def test_metrics_show_the_logs_size_and_its_backlog(app, client):
    from freezegun import freeze_time

    from tests.test_operations import scrape, value

    samples = scrape(client)
    assert value(samples, "lethe_transparency_log_size") == 0
    assert value(samples, "lethe_transparency_log_pending") == 0
    assert value(samples, "lethe_transparency_log_oldest_pending_age_seconds") == 0
    with app.app_context(), freeze_time("2026-11-29 12:00:00"):
        _queue_documents(3)
    with freeze_time("2026-11-29 12:01:30"):
        samples = scrape(client)
    assert value(samples, "lethe_transparency_log_pending") == 3
    assert value(samples, "lethe_transparency_log_oldest_pending_age_seconds") == 90
    with app.app_context():
        jobs.run_due(roles=["jobs"])
    samples = scrape(client)
    assert value(samples, "lethe_transparency_log_size") == 3
    assert value(samples, "lethe_transparency_log_pending") == 0


# --- lock order --------------------------------------------------------------------------


def test_a_statement_and_another_signer_at_once_do_not_wait_on_each_other(app_factory, monkeypatch):
    """Found by review: on SQLite a statement wrote its queue row (the key store's write lock)
    before its audit entry (the main database's, at commit), while a transaction that wrote
    the main database first and then queued a document took them the other way: both waited
    out the busy timeout and failed. Now queue rows are written last, at commit: every
    transaction takes the main database's lock first."""
    import threading
    import time

    from sqlalchemy import update

    import storage.db as sdb
    from rights.erasure import receipts
    from storage.models import Subject

    monkeypatch.setattr(sdb, "SQLITE_BUSY_TIMEOUT_MS", 3000)
    app = app_factory()
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's database-wide write locks")
        record_key = receipts.reveal_record_key(_erase(1))
        db.session.commit()
        for engine in db.engines.values():
            engine.dispose()  # new connections take the shorter busy timeout
    holding = threading.Event()
    out = {}

    def sign_something():
        # The main database first (a record written), then a signed document queued.
        with app.app_context():
            try:
                # Any write to the main database only: its write lock is taken.
                db.session.execute(
                    update(Subject).where(Subject.id == "nobody").values(closed_at=None)
                )
                holding.set()
                time.sleep(1.0)  # the statement is asked for meanwhile
                transparency.queue("doc.signed.meanwhile", "statement")
                db.session.commit()
                out["signer"] = "ok"
            except Exception as exc:  # noqa: BLE001 - reported by the assertion
                out["signer"] = repr(exc)[:200]

    def run_statement():
        holding.wait(timeout=10)
        resp = app.test_client().post("/api/v1/statements", json={"record_key": record_key})
        out["statement"] = resp.status_code

    threads = [threading.Thread(target=sign_something), threading.Thread(target=run_statement)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert out == {"signer": "ok", "statement": 200}


def test_downloading_the_receipt_file_signs_no_statement(app, client):
    """Found by review: /records with download=receipt signed a statement (a leaf of the
    public log) and threw it away."""
    from rights.erasure import receipts

    with app.app_context():
        record_key = receipts.reveal_record_key(_erase(1))
        db.session.commit()
    resp = client.post("/records", data={"record_key": record_key, "download": "receipt"})
    assert resp.status_code == 200
    with app.app_context():
        kinds = db.session.execute(select(LogPending.kind)).scalars().all()
        assert "statement" not in kinds and kinds.count("receipt") == 1
    resp = client.post("/records", data={"record_key": "X" * 20, "download": "receipt"})
    assert resp.status_code in (404, 422)


def test_a_checkpoint_whose_signature_fails_is_no_proof_on_the_page(app, client):
    """Found by review: the page's check read the stored root without the checkpoint's
    signature; a root changed beside its note must not pass."""
    with app.app_context():
        _queue_documents(3)
        jobs.run_due(roles=["jobs"])
        assert transparency.placement("doc.statement.1").checked
        db.session.execute(
            LogCheckpoint.__table__.update().values(note="forged\n3\nAAAA\n\n\u2014 x AAAA\n")
        )
        db.session.commit()
        assert not transparency.placement("doc.statement.1").checked
