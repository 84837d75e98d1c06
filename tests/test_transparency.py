"""The transparency log (issue 18): receipts, statements and audit checkpoints appended to an
RFC 9162 Merkle tree by the worker's sequencer; C2SP signed checkpoints; inclusion and
consistency proofs served under /.well-known/transparency/ and checked here with the tests'
own verifiers (tests/test_merkle.py's reference, written from the RFC), not the production
code; failure modes (a tampered, removed or reordered leaf, a fork, a truncated log)."""

import base64
import hashlib

import pytest
from sqlalchemy import func, select

from rights import jobs
from rights.erasure import erasure, statements
from rights.ledger import audit_checkpoints, signed_note, transparency
from rights.lifecycle import requests
from storage.db import db
from storage.models import LogCheckpoint, LogLeaf, LogNode, LogPending
from tests import factories
from tests.test_merkle import ref_verify_consistency, ref_verify_inclusion

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
