"""The transparency log (issue 18) as a witness and a verifier see it: grown in batches of many
sizes, every signed checkpoint, inclusion proof and consistency proof served under
/.well-known/transparency/ is checked with the tests' own RFC 9162 reference
(tests/test_merkle.py: ``Ref`` for the Merkle Tree Hash, ``ref_verify_*`` for the proofs),
never with the production verifiers; the endpoints' input errors; and the failures a witness
must catch when the STORED log is tampered with (a leaf changed, removed or reordered, a fork,
a truncation, a rewrite after size m, a checkpoint signed by an unknown key), through
``rights.ledger.witness`` and ``flask transparency verify``.

Tests named ``test_bug_...`` fail on purpose: each shows a defect of the production code,
described in its docstring (they pass once it is fixed)."""

import base64
import hashlib
import io
import random
import urllib.error
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, insert, select, update

from cli import transparency as transparency_cli
from rights import jobs
from rights.ledger import signed_note, signing, transparency, witness
from storage.clock import utcnow
from storage.db import db
from storage.models import LogCheckpoint, LogLeaf, LogNode, LogPending
from tests.test_merkle import Ref, ref_verify_consistency, ref_verify_inclusion

LOG = "/.well-known/transparency"
BASE = "http://lethe.test"  # the tests' PUBLIC_URL (tests/conftest.py)
ORIGIN = "lethe.test/transparency"  # its host and path + /transparency


# --- helpers ---------------------------------------------------------------------------------


def _leaf(doc: str) -> bytes:
    """RFC 9162 leaf hash of a document's entry, from the definition."""
    return hashlib.sha256(b"\x00" + hashlib.sha256(doc.encode("ascii")).digest()).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(hashes: list[str]) -> list[bytes]:
    return [base64.b64decode(h, validate=True) for h in hashes]


def _queue(docs: list[str], kind: str = "statement") -> list[str]:
    for doc in docs:
        transparency.queue(doc, kind)
    db.session.commit()
    return docs


def _docs(prefix: str, count: int) -> list[str]:
    return [f"doc.{prefix}.{i}" for i in range(count)]


def _sequence(limit: int = transparency.BATCH) -> int:
    count = transparency.sequence(limit=limit)
    db.session.commit()
    return count


def _pending() -> int:
    return db.session.execute(select(func.count(LogPending.id))).scalar_one()


def _stored_leaves() -> list[tuple[int, bytes]]:
    return [
        (row.index, row.leaf_hash)
        for row in db.session.execute(
            select(LogLeaf.index, LogLeaf.leaf_hash).order_by(LogLeaf.index)
        )
    ]


def _keys(client) -> list[str]:
    resp = client.get(f"{LOG}/keys")
    assert resp.status_code == 200
    return resp.get_data(as_text=True).split()


def _note(client, size: int | None = None) -> str:
    resp = client.get(f"{LOG}/checkpoint" + (f"?size={size}" if size else ""))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/plain"
    return resp.get_data(as_text=True)


def _open(note: str, keys: list[str]) -> signed_note.Checkpoint:
    body, signers = signed_note.open_note(note, keys)
    assert signers == [ORIGIN]
    return signed_note.parse_checkpoint(body)


def _inclusion(client, leaf: bytes, size: int | None = None) -> dict:
    query = f"leaf={leaf.hex()}" + (f"&size={size}" if size else "")
    resp = client.get(f"{LOG}/proof/inclusion?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def _consistency(client, first: int, second: int | None = None) -> dict:
    query = f"from={first}" + (f"&to={second}" if second else "")
    resp = client.get(f"{LOG}/proof/consistency?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def _error(resp, status: int, code: str, field: str | None = None) -> dict:
    """The API's JSON error shape, with ``status`` and ``code`` (and ``field`` named)."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == "application/json"
    error = resp.get_json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code and error["message"]
    if field is not None:
        assert field in error["fields"], error
    return error


def _all_nodes(leaves: list[bytes]) -> list[dict]:
    """Every complete subtree of the honest tree of ``leaves``, from the reference MTH."""
    ref, n = Ref(leaves), len(leaves)
    return [
        {"level": level, "idx": k, "hash": ref.mth(k << level, (k + 1) << level)}
        for level in range(n.bit_length())
        for k in range(n >> level)
    ]


def _rebuild_stored_tree(leaves: list[bytes]) -> None:
    """A log operator rewriting history: the stored leaves and subtree hashes replaced by the
    honest tree (reference MTH) of ``leaves``. The signed checkpoints are left alone."""
    db.session.execute(delete(LogNode))
    db.session.execute(delete(LogLeaf))
    now = utcnow()
    db.session.execute(
        insert(LogLeaf),
        [
            {"index": i, "leaf_hash": h, "kind": "statement", "appended_at": now}
            for i, h in enumerate(leaves)
        ],
    )
    db.session.execute(insert(LogNode), _all_nodes(leaves))
    db.session.commit()


def _truncate_stored_log(size: int) -> None:
    """Leaves, subtree hashes and checkpoints beyond the first ``size`` leaves, deleted."""
    db.session.execute(delete(LogLeaf).where(LogLeaf.index >= size))
    top = db.session.execute(select(func.max(LogNode.level))).scalar_one()
    for level in range(top + 1):
        # node (level, k) is complete within ``size`` leaves iff (k + 1) * 2**level <= size
        db.session.execute(
            delete(LogNode).where(LogNode.level == level, LogNode.idx >= size >> level)
        )
    db.session.execute(delete(LogCheckpoint).where(LogCheckpoint.size > size))
    db.session.commit()


def _sign_as_the_log(body: str) -> str:
    """A note signed with the log's own current key under its name (what a dishonest operator
    can do)."""
    key = signing.ed25519_private_key(signing.current_key())
    return signed_note.sign(body, transparency.origin(), key)


@pytest.fixture
def serve(client, monkeypatch):
    """``flask transparency verify`` fetching from the test client (any base URL)."""
    fetched: list[str] = []

    def fetch(url: str) -> str:
        fetched.append(url)
        assert url.startswith(("http://", "https://"))
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        resp = client.get(path)
        if resp.status_code != 200:
            raise urllib.error.HTTPError(
                url, resp.status_code, resp.status, resp.headers, io.BytesIO(resp.data)
            )
        return resp.get_data(as_text=True)

    monkeypatch.setattr(transparency_cli, "_fetch", fetch)
    return fetched


def _verify(runner, saved, *extra: str):
    return runner.invoke(args=["transparency", "verify", "--from", str(saved), *extra])


# --- 1. growth in batches of many sizes --------------------------------------------------------

# Sizes after each batch: 1 2 4 7 14 16 32 64 97 197 252 253 (powers of two and not).
BATCHES = (1, 1, 2, 3, 7, 2, 16, 32, 33, 100, 55, 1)


def test_growth_in_batches_every_checkpoint_and_proof_checks_out(app, client):
    rng = random.Random(18)
    kinds = transparency.KINDS
    queued: list[str] = []  # in queue order
    expected: list[bytes] = []  # the leaf hashes appended so far, in queue order
    ref = Ref(expected)  # grows with ``expected`` (earlier ranges never change)
    notes: dict[int, str] = {}
    roots: dict[int, bytes] = {}
    with app.app_context():
        assert transparency.origin() == ORIGIN
        for batch, k in enumerate(BATCHES):
            # Always more queued than the batch takes: ``limit`` takes the oldest first.
            if _pending() < k + 3:
                more = [f"doc.grow.{len(queued) + i}" for i in range(k + 3 + batch)]
                for i, doc in enumerate(more):
                    transparency.queue(doc, kinds[(len(queued) + i) % 3])
                db.session.commit()
                queued += more
            assert _sequence(limit=k) == k
            expected.extend(_leaf(doc) for doc in queued[len(expected) : len(expected) + k])
            size = len(expected)
            assert _pending() == len(queued) - size

            keys = _keys(client)
            note = _note(client)
            checkpoint = _open(note, keys)
            assert checkpoint.origin == transparency.origin()
            assert checkpoint.size == size
            assert checkpoint.root == ref.mth(0, size)
            assert checkpoint.extensions == ()
            assert _note(client, size) == note
            notes[size], roots[size] = note, checkpoint.root

            # Leaves 0..size-1, contiguous, in queue order, with the kinds they were queued as.
            assert _stored_leaves() == list(enumerate(expected))
            kinds_stored = db.session.execute(select(LogLeaf.kind).order_by(LogLeaf.index))
            assert list(kinds_stored.scalars()) == [kinds[i % 3] for i in range(size)]

    sizes = sorted(notes)
    assert sizes == [1, 2, 4, 7, 14, 16, 32, 64, 97, 197, 252, 253]
    keys = _keys(client)
    # Every checkpoint is still served, byte for byte, and still verifies.
    for size in sizes:
        assert _note(client, size) == notes[size]
        assert _open(notes[size], keys).root == roots[size]
    assert _note(client) == notes[sizes[-1]]

    # Consistency between every pair of published sizes (and between unpublished ones).
    for i, m in enumerate(sizes):
        for n in sizes[i + 1 :]:
            proof = _consistency(client, m, n)
            assert (proof["first"], proof["second"]) == (m, n)
            path = _unb64(proof["consistency_path"])
            assert path == ref.proof(m, n)
            assert ref_verify_consistency(m, n, roots[m], roots[n], path), (m, n)
        assert _consistency(client, m, m)["consistency_path"] == []
    latest = _consistency(client, 5)  # ``to`` defaults to the latest checkpoint's size
    assert latest["second"] == sizes[-1]
    assert ref_verify_consistency(
        5, sizes[-1], ref.mth(0, 5), roots[sizes[-1]], _unb64(latest["consistency_path"])
    )
    for m, n in ((3, 5), (5, 100), (33, 250), (127, 129), (128, 253)):
        path = _unb64(_consistency(client, m, n)["consistency_path"])
        assert ref_verify_consistency(m, n, ref.mth(0, m), ref.mth(0, n), path), (m, n)

    # Inclusion of sampled leaves at every published size, against that size's signed root.
    for size in sizes:
        sample = {0, size - 1, size // 2, *rng.sample(range(size), min(size, 4))}
        for index in sorted(sample):
            proof = _inclusion(client, expected[index], size)
            assert (proof["leaf_index"], proof["tree_size"]) == (index, size)
            path = _unb64(proof["inclusion_path"])
            assert path == ref.path(index, 0, size)
            assert ref_verify_inclusion(expected[index], index, size, path, roots[size])
            # ... and the proof is not accepted for another leaf or another root.
            other = expected[(index + 1) % len(expected)]
            assert not ref_verify_inclusion(other, index, size, path, roots[size])
            if size > 1:
                assert not ref_verify_inclusion(
                    expected[index], index, size, path, roots[sizes[sizes.index(size) - 1]]
                )
    # Without ``size``: the latest checkpoint's tree; at an unpublished size: that tree.
    proof = _inclusion(client, expected[100])
    assert proof["tree_size"] == sizes[-1]
    assert ref_verify_inclusion(
        expected[100], 100, sizes[-1], _unb64(proof["inclusion_path"]), roots[sizes[-1]]
    )
    proof = _inclusion(client, expected[100], 150)
    assert ref_verify_inclusion(
        expected[100], 100, 150, _unb64(proof["inclusion_path"]), ref.mth(0, 150)
    )


def test_placement_reports_each_document_against_the_latest_checkpoint(app):
    with app.app_context():
        docs = _queue(_docs("place", 12), "receipt")
        assert transparency.placement("never.queued") is None
        assert transparency.placement(docs[0]) == transparency.Placement(None, 0, False)
        assert _sequence(limit=5) == 5
        assert transparency.placement(docs[4]) == transparency.Placement(4, 5, True)
        assert transparency.placement(docs[5]) == transparency.Placement(None, 5, False)
        assert _sequence() == 7
        for i, doc in enumerate(docs):
            placement = transparency.placement(doc)
            assert (placement.index, placement.size, placement.checked) == (i, 12, True)
            assert placement.position == i + 1


# --- 2. a document queued twice is one leaf ----------------------------------------------------


def test_a_document_queued_twice_is_one_leaf_and_the_queue_empties(app, client):
    with app.app_context():
        a, b, c, d = "doc.twice.a", "doc.twice.b", "doc.twice.c", "doc.twice.d"
        transparency.queue(a, "receipt")
        transparency.queue(b, "statement")
        transparency.queue(a, "statement")  # the same document again, in the same batch
        db.session.commit()
        assert _sequence() == 2
        rows = db.session.execute(select(LogLeaf.leaf_hash, LogLeaf.kind).order_by(LogLeaf.index))
        assert [tuple(r) for r in rows] == [(_leaf(a), "receipt"), (_leaf(b), "statement")]
        assert _pending() == 0

        # Queued again after it was appended: nothing appended, no new checkpoint.
        _queue([a])
        assert _sequence() == 0
        assert _pending() == 0
        assert db.session.execute(select(func.count(LogCheckpoint.size))).scalar_one() == 1

        # Copies split over batches by ``limit``.
        _queue([c, b, c, d])
        assert _sequence(limit=1) == 1  # c
        assert _sequence(limit=2) == 0  # b and c again: both already in the log
        assert _sequence(limit=2) == 1  # d
        assert _pending() == 0
        leaves = [_leaf(x) for x in (a, b, c, d)]
        assert _stored_leaves() == list(enumerate(leaves))
    checkpoint = _open(_note(client), _keys(client))
    assert checkpoint.size == 4 and checkpoint.root == Ref(leaves).mth(0, 4)


def test_queue_refuses_an_unknown_kind(app):
    with app.app_context():
        with pytest.raises(ValueError):
            transparency.queue("doc.x", "letter")


# --- 3. the endpoints' input errors -------------------------------------------------------------


def _b64_friendly_docs() -> tuple[str, str]:
    """A document whose leaf hash's base64 has both '+' and '/' (so its URL-safe spelling
    differs); every 32-byte value's base64 ends in one '=' (44 characters)."""
    i = 0
    while True:
        doc = f"doc.b64.{i}"
        text = _b64(_leaf(doc))
        if "+" in text and "/" in text:
            return doc, text
        i += 1


def test_every_leaf_spelling_finds_the_leaf(app, client):
    doc, std = _b64_friendly_docs()
    with app.app_context():
        _queue(_docs("spell", 3) + [doc])
        _sequence()
    leaf = _leaf(doc)
    urlsafe = std.replace("+", "-").replace("/", "_")
    spellings = [
        leaf.hex(),
        leaf.hex().upper(),
        std,  # standard, padded
        std.rstrip("="),  # standard, unpadded
        urlsafe,  # URL-safe, padded
        urlsafe.rstrip("="),  # URL-safe, unpadded
    ]
    root = _open(_note(client), _keys(client)).root
    for spelling in spellings:
        resp = client.get(f"{LOG}/proof/inclusion?leaf={quote(spelling, safe='')}&size=4")
        assert resp.status_code == 200, (spelling, resp.get_data(as_text=True))
        proof = resp.get_json()
        assert proof["leaf_index"] == 3
        assert ref_verify_inclusion(leaf, 3, 4, _unb64(proof["inclusion_path"]), root)


def test_malformed_leaves_are_400_naming_the_leaf(app, client):
    with app.app_context():
        _queue(_docs("bad", 5))
        _sequence()
    leaf = _leaf("doc.bad.0")
    bad = [
        "",  # missing
        "zz" * 32,  # 64 characters, not hex
        leaf.hex()[:-2],  # 31 bytes of hex
        leaf.hex() + "ab",  # 33 bytes of hex
        leaf.hex()[:-1],  # an odd number of hex digits
        _b64(leaf[:31]),  # base64 of 31 bytes (44 characters with its padding)
        _b64(leaf + b"\x00")[:44],  # 44 base64 characters, 33 bytes
        _b64(leaf)[:-2] + "!=",  # not base64
        "=" * 44,
        "é" * 43,  # not ASCII
        _b64(leaf).replace("=", "A") + "A",  # 45 characters
    ]
    for value in bad:
        resp = client.get(f"{LOG}/proof/inclusion?leaf={quote(value, safe='')}")
        _error(resp, 400, "bad_request", "leaf")
    _error(client.get(f"{LOG}/proof/inclusion"), 400, "bad_request", "leaf")


@pytest.mark.parametrize("size", ["0", "-1", "abc", "1.5", "", " 1", "+2", "0x2", "٣", "9" * 20])
def test_malformed_sizes_are_400(app, client, size):
    with app.app_context():
        _queue(_docs("size", 3))
        _sequence()
    leaf = _leaf("doc.size.0").hex()
    q = quote(size, safe="")
    _error(client.get(f"{LOG}/checkpoint?size={q}"), 400, "bad_request", "size")
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaf}&size={q}"), 400, "bad_request", "size")
    _error(client.get(f"{LOG}/proof/consistency?from={q}&to=3"), 400, "bad_request", "from")
    _error(client.get(f"{LOG}/proof/consistency?from=1&to={q}"), 400, "bad_request", "to")


def test_sizes_and_leaves_the_log_has_not_published_are_404(app, client):
    with app.app_context():
        docs = _queue(_docs("nf", 5))
        _sequence(limit=3)
        _sequence()
    leaf = _leaf(docs[4]).hex()
    # Published sizes: 3 and 5.
    assert _note(client, 3) and _note(client, 5)
    _error(client.get(f"{LOG}/checkpoint?size=4"), 404, "not_found")  # no checkpoint at 4
    _error(client.get(f"{LOG}/checkpoint?size=6"), 404, "not_found")
    _error(client.get(f"{LOG}/checkpoint?size={2**63 - 1}"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaf}&size=6"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaf}&size=4"), 404, "not_found")  # index 4
    _error(client.get(f"{LOG}/proof/inclusion?leaf={'ab' * 32}"), 404, "not_found")  # unknown
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaf}&size={10**18}"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/consistency?from=4&to=3"), 404, "not_found")  # from > to
    _error(client.get(f"{LOG}/proof/consistency?from=6"), 404, "not_found")  # from > latest
    _error(client.get(f"{LOG}/proof/consistency?from=1&to=6"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/consistency?from={10**18}"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/consistency?to=3"), 400, "bad_request", "from")  # no from
    # Any size up to the latest has proofs, published as a checkpoint or not.
    assert _inclusion(client, _leaf(docs[3]), 4)["tree_size"] == 4
    assert _consistency(client, 2, 4)["second"] == 4


def test_an_empty_log_is_404_everywhere_but_the_keys(app, client):
    _error(client.get(f"{LOG}/checkpoint"), 404, "not_found")
    _error(client.get(f"{LOG}/checkpoint?size=1"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/inclusion?leaf={'ab' * 32}"), 404, "not_found")
    _error(client.get(f"{LOG}/proof/consistency?from=1"), 404, "not_found")
    resp = client.get(f"{LOG}/keys")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"


def test_log_responses_are_public_and_cookieless(app, client):
    with app.app_context():
        docs = _queue(_docs("hdr", 6))
        _sequence(limit=2)
        _sequence()
    leaf = _leaf(docs[1]).hex()
    for path in (
        f"{LOG}/checkpoint",
        f"{LOG}/checkpoint?size=2",
        f"{LOG}/keys",
        f"{LOG}/proof/inclusion?leaf={leaf}",
        f"{LOG}/proof/inclusion?leaf={leaf}&size=2",
        f"{LOG}/proof/consistency?from=2",
        f"{LOG}/proof/consistency?from=2&to=6",
        "/.well-known/jwks.json",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers.get("Access-Control-Allow-Origin") == "*", path
        assert "Set-Cookie" not in resp.headers, path
        assert resp.headers["Cache-Control"].startswith("public, max-age="), path
    for path in (
        f"{LOG}/checkpoint?size=3",
        f"{LOG}/proof/inclusion?leaf=nope",
        f"{LOG}/proof/consistency?from=9",
    ):
        resp = client.get(path)
        assert resp.status_code in (400, 404) and "Set-Cookie" not in resp.headers, path
    # A size-pinned answer never changes: cached for a day; the latest for seconds.
    assert client.get(f"{LOG}/checkpoint?size=2").headers["Cache-Control"].endswith("86400")
    assert client.get(f"{LOG}/checkpoint").headers["Cache-Control"].endswith("=10")


def test_the_log_error_answers_are_readable_cross_origin_too(app, client):
    """Was a defect (web/wellknown.py, the log's three endpoints): the 400 and
    404 answers come straight from ``error_response`` and skip ``_public``, so they carry no
    ``Access-Control-Allow-Origin``. The module promises everything here is "readable from
    any origin"; a verifier running in a browser on another origin cannot read "no such leaf
    in the tree of that size" (a receipt not yet sequenced) or a 400's ``fields``: it sees a
    CORS network failure instead."""
    with app.app_context():
        _queue(_docs("cors", 3))
        _sequence()
    for path in (
        f"{LOG}/checkpoint?size=2",  # 404
        f"{LOG}/proof/inclusion?leaf={'ab' * 32}",  # 404
        f"{LOG}/proof/inclusion?leaf=nope",  # 400
        f"{LOG}/proof/consistency?from=0",  # 400
    ):
        resp = client.get(path)
        assert resp.status_code in (400, 404)
        assert resp.headers.get("Access-Control-Allow-Origin") == "*", path


def test_a_hex_leaf_with_spaces_inside_is_malformed(app, client):
    """Was a defect (web/wellknown.py, ``_hash``): a 64-character value is decoded with
    ``bytes.fromhex``, which skips ASCII whitespace between byte pairs, and its length is
    never checked, so "ab" * 30 + "  " + "ab" (64 characters, 31 bytes) passes as a leaf hash
    and gets 404 "no such leaf" instead of 400 naming ``leaf`` (a hash of the wrong length)."""
    with app.app_context():
        _queue(_docs("ws", 2))
        _sequence()
    value = "ab" * 30 + "  " + "ab"
    assert len(value) == 64 and len(bytes.fromhex(value)) == 31
    resp = client.get(f"{LOG}/proof/inclusion?leaf={quote(value)}")
    _error(resp, 400, "bad_request", "leaf")


def test_a_checkpoint_size_beyond_64_bits_is_refused_not_a_server_error(app, client):
    """Was a defect (web/wellknown.py ``_size`` + ``log_checkpoint``): ``_size`` accepts up to 19
    digits, i.e. up to 9999999999999999999 > 2**63 - 1, and ``log_checkpoint`` passes it
    straight to ``transparency.checkpoint`` -> ``db.session.get(LogCheckpoint, n)``: SQLite
    raises OverflowError ("Python int too large to convert to SQLite INTEGER") and PostgreSQL
    DataError ("bigint out of range"), a 500 either way, where any other unpublished size is a
    404. (The proof endpoints compare with the latest size in Python first: 404.)"""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # the answer a client gets, not the traceback
    with app.app_context():
        _queue(_docs("big", 2))
        _sequence()
    for size in (2**63, 10**19 - 1):
        resp = client.get(f"{LOG}/checkpoint?size={size}")
        assert resp.status_code in (400, 404), (size, resp.status_code)
        assert "error" in resp.get_json()


# --- 4. failure modes of the stored log ---------------------------------------------------------


def _log_of(client, app, count: int, *, at: tuple[int, ...] = ()) -> tuple[list[str], dict]:
    """``count`` documents appended, a checkpoint signed at each size in ``at`` and at
    ``count``; the documents and the served notes by size."""
    docs = _docs("log", count)
    with app.app_context():
        _queue(docs)
        done = 0
        for size in (*at, count):
            assert _sequence(limit=size - done) == size - done
            done = size
    return docs, {size: _note(client, size) for size in (*at, count)}


def test_a_tampered_leaf_hash_breaks_the_proofs_that_carry_it(app, client):
    docs, notes = _log_of(client, app, 20)
    keys = _keys(client)
    old = _open(notes[20], keys)
    leaves = [_leaf(d) for d in docs]
    forged = hashlib.sha256(b"\x00forged entry").digest()
    honest_7 = _inclusion(client, leaves[7], 20)
    assert ref_verify_inclusion(leaves[7], 7, 20, _unb64(honest_7["inclusion_path"]), old.root)
    with app.app_context():
        db.session.execute(update(LogLeaf).where(LogLeaf.index == 6).values(leaf_hash=forged))
        db.session.execute(
            update(LogNode).where(LogNode.level == 0, LogNode.idx == 6).values(hash=forged)
        )
        db.session.commit()
        # The log's own check of a receipt sees it too: leaf 7's proof carries leaf 6.
        assert transparency.placement(docs[7]).checked is False
        assert transparency.placement(docs[6]) is None  # the document is gone from the log
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaves[6].hex()}"), 404, "not_found")
    # The forged leaf's proof, and its sibling's, no longer lead to the signed root.
    proof = _inclusion(client, forged, 20)
    assert proof["leaf_index"] == 6
    assert not ref_verify_inclusion(forged, 6, 20, _unb64(proof["inclusion_path"]), old.root)
    proof = _inclusion(client, leaves[7], 20)
    path = _unb64(proof["inclusion_path"])
    assert path[0] == forged
    assert not ref_verify_inclusion(leaves[7], 7, 20, path, old.root)


def test_a_tampered_leaf_in_a_rebuilt_tree_fails_consistency_with_the_signed_root(
    app, client, runner, serve, tmp_path
):
    docs, notes = _log_of(client, app, 24, at=(16,))
    saved = tmp_path / "witness"
    assert _verify(runner, saved).exit_code == 0  # keeps the checkpoint of 24
    keys = _keys(client)
    old16, old24 = _open(notes[16], keys), _open(notes[24], keys)
    leaves = [_leaf(d) for d in docs]
    changed = list(leaves)
    changed[9] = _leaf("doc.log.9.edited")
    with app.app_context():
        _rebuild_stored_tree(changed)
        _queue(_docs("after", 6))
        assert _sequence() == 6
    new = _open(_note(client), keys)  # signed by the log's genuine key
    assert new.size == 30
    proof = _unb64(_consistency(client, 24, 30)["consistency_path"])
    after = changed + [_leaf(d) for d in _docs("after", 6)]
    # The served proof is the honest proof of the rebuilt tree...
    assert ref_verify_consistency(24, 30, Ref(after).mth(0, 24), new.root, proof)
    # ... and does not lead from what the witness saw.
    assert not ref_verify_consistency(24, 30, old24.root, new.root, proof)
    proof16 = _unb64(_consistency(client, 16, 30)["consistency_path"])
    assert not ref_verify_consistency(16, 30, old16.root, new.root, proof16)
    incl = _inclusion(client, changed[9], 24)
    assert not ref_verify_inclusion(changed[9], 9, 24, _unb64(incl["inclusion_path"]), old24.root)
    with pytest.raises(witness.Rewritten):
        witness.check(notes[24], _note(client), keys, [_b64(h) for h in proof])
    result = _verify(runner, saved)
    assert result.exit_code == 1
    assert "REWRITTEN" in result.output
    assert saved.read_text() == notes[24]  # the old checkpoint is kept


def test_a_removed_leaf_fails_consistency_and_inclusion_with_the_signed_root(app, client):
    docs, notes = _log_of(client, app, 40, at=(25,))
    keys = _keys(client)
    old25 = _open(notes[25], keys)
    leaves = [_leaf(d) for d in docs]
    removed = leaves[:10] + leaves[11:]  # leaf 10 taken out, the rest moved up
    with app.app_context():
        _rebuild_stored_tree(removed)
        _queue(_docs("after", 5))
        assert _sequence() == 5  # appended on top of the 39 left: size 44
    new_note = _note(client)
    new = _open(new_note, keys)
    assert new.size == 44
    rebuilt = removed + [_leaf(d) for d in _docs("after", 5)]
    assert new.root == Ref(rebuilt).mth(0, 44)
    proof = _unb64(_consistency(client, 25, 44)["consistency_path"])
    assert ref_verify_consistency(25, 44, Ref(rebuilt).mth(0, 25), new.root, proof)
    assert not ref_verify_consistency(25, 44, old25.root, new.root, proof)
    _error(client.get(f"{LOG}/proof/inclusion?leaf={leaves[10].hex()}"), 404, "not_found")
    # Every leaf after the removed one now has another index: none of their proofs at 25
    # leads to the root signed at 25; the proofs of leaves before it carry a changed subtree.
    for index in (0, 9, 11, 24):
        incl = _inclusion(client, leaves[index], 25)
        path = _unb64(incl["inclusion_path"])
        assert not ref_verify_inclusion(leaves[index], incl["leaf_index"], 25, path, old25.root)
        assert not ref_verify_inclusion(leaves[index], index, 25, path, old25.root)
    with pytest.raises(witness.Rewritten):
        witness.check(notes[25], new_note, keys, [_b64(h) for h in proof])
    # An offline rebuild gives the same answer: no proof from the altered tree can lead from
    # the signed root, whatever size the log now claims.
    ref = Ref(removed)
    for n in (26, 30, 39):
        assert not ref_verify_consistency(25, n, old25.root, ref.mth(0, n), ref.proof(25, n))
    assert ref.mth(0, 25) != old25.root
    assert ref_verify_consistency(10, 39, Ref(leaves).mth(0, 10), ref.mth(0, 39), ref.proof(10, 39))


def test_a_reordered_pair_of_leaves_fails_against_the_signed_root(
    app, client, runner, serve, tmp_path
):
    docs, notes = _log_of(client, app, 30)
    saved = tmp_path / "witness"
    assert _verify(runner, saved).exit_code == 0
    keys = _keys(client)
    old = _open(notes[30], keys)
    leaves = [_leaf(d) for d in docs]
    extra = [_leaf(d) for d in _docs("after", 3)]
    for a, b in ((12, 13), (3, 17)):  # siblings, and leaves far apart
        # Offline, the operator's honest rebuild of the reordered leaves (reference MTH).
        swapped = list(leaves)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        ref, grown = Ref(swapped), Ref(swapped + extra)
        assert ref.mth(0, 30) != old.root  # another tree of size 30
        # From a size the witness saw, the rebuilt tree's proofs lead from the signed root
        # exactly while that size ends before the first moved leaf.
        for m in range(1, 31):
            first_root = Ref(leaves).mth(0, m)
            ok = ref_verify_consistency(m, 33, first_root, grown.mth(0, 33), grown.proof(m, 33))
            assert ok == (m <= min(a, b)), (a, b, m)
        for index in (a, b):
            moved = swapped.index(leaves[index])
            assert moved != index
            assert not ref_verify_inclusion(
                leaves[index], moved, 30, ref.path(moved, 0, 30), old.root
            )
    with app.app_context():
        swapped = list(leaves)
        swapped[3], swapped[17] = swapped[17], swapped[3]
        _rebuild_stored_tree(swapped)
        _queue(_docs("after", 3))
        assert _sequence() == 3
    new_note = _note(client)
    new = _open(new_note, keys)
    proof = _unb64(_consistency(client, 30, 33)["consistency_path"])
    assert not ref_verify_consistency(30, 33, old.root, new.root, proof)
    # A prefix before the swap is untouched; one past it is not.
    prefix = _unb64(_consistency(client, 3, 33)["consistency_path"])
    assert ref_verify_consistency(3, 33, Ref(leaves).mth(0, 3), new.root, prefix)
    for index in (3, 17):
        incl = _inclusion(client, leaves[index], 30)
        assert incl["leaf_index"] == (17 if index == 3 else 3)
        path = _unb64(incl["inclusion_path"])
        assert not ref_verify_inclusion(leaves[index], incl["leaf_index"], 30, path, old.root)
    with pytest.raises(witness.Rewritten):
        witness.check(notes[30], new_note, keys, [_b64(h) for h in proof])
    result = _verify(runner, saved)
    assert result.exit_code == 1 and "REWRITTEN" in result.output


def test_a_fork_is_two_trees_of_one_size(app, client, runner, serve, tmp_path):
    docs, notes = _log_of(client, app, 10)
    saved = tmp_path / "witness"
    assert _verify(runner, saved).exit_code == 0
    keys = _keys(client)
    leaves = [_leaf(d) for d in docs]
    other = leaves[:9] + [_leaf("doc.log.other")]
    with app.app_context():
        body = signed_note.checkpoint_body(transparency.origin(), 10, Ref(other).mth(0, 10))
        forked = _sign_as_the_log(body)
    assert _open(forked, keys).size == 10  # genuinely signed...
    with pytest.raises(witness.Rewritten, match="forked"):
        witness.check(notes[10], forked, keys, None)  # ... yet another tree of size 10
    assert witness.check(notes[10], notes[10], keys, None).grew_by == 0
    # The log serving the forked checkpoint: the witness says so and keeps its own.
    with app.app_context():
        db.session.execute(
            update(LogCheckpoint).where(LogCheckpoint.size == 10).values(note=forked)
        )
        db.session.commit()
    result = _verify(runner, saved)
    assert result.exit_code == 1
    assert "REWRITTEN" in result.output and "forked" in result.output
    assert saved.read_text() == notes[10]


def test_a_truncated_log_is_rewritten(app, client, runner, serve, tmp_path):
    docs, notes = _log_of(client, app, 20, at=(8,))
    saved = tmp_path / "witness"
    assert _verify(runner, saved).exit_code == 0  # keeps 20
    keys = _keys(client)
    with pytest.raises(witness.Rewritten, match="truncated"):
        witness.check(notes[20], notes[8], keys, None)
    with app.app_context():
        _truncate_stored_log(8)
    assert _open(_note(client), keys).size == 8
    result = _verify(runner, saved)
    assert result.exit_code == 1
    assert "REWRITTEN" in result.output and "truncated" in result.output
    assert saved.read_text() == notes[20]


def test_a_log_rewritten_after_size_m_is_caught_by_the_witness(
    app, client, runner, serve, tmp_path
):
    docs, notes = _log_of(client, app, 20, at=(12,))
    saved = tmp_path / "witness"
    first = _verify(runner, saved)
    assert first.exit_code == 0 and "20 entries" in first.output
    with app.app_context():
        _truncate_stored_log(12)  # everything after 12 dropped...
        other = _queue(_docs("other", 15))  # ... and other entries sequenced in its place
        assert _sequence() == 15
        assert _stored_leaves()[12] == (12, _leaf(other[0]))
    keys = _keys(client)
    new_note = _note(client)
    new = _open(new_note, keys)  # a genuine signature over the rewritten tree
    assert new.size == 27
    # Consistent with what was published up to 12, not with 20.
    old12 = _open(notes[12], keys)
    path12 = _unb64(_consistency(client, 12, 27)["consistency_path"])
    assert ref_verify_consistency(12, 27, old12.root, new.root, path12)
    path20 = _unb64(_consistency(client, 20, 27)["consistency_path"])
    assert not ref_verify_consistency(20, 27, _open(notes[20], keys).root, new.root, path20)
    result = _verify(runner, saved)
    assert result.exit_code == 1
    assert "REWRITTEN" in result.output
    assert saved.read_text() == notes[20]
    assert f"{BASE}{LOG}/proof/consistency?from=20&to=27" in serve


def test_a_checkpoint_not_signed_by_the_log_is_not_genuine(app, client, runner, serve, tmp_path):
    docs, notes = _log_of(client, app, 6, at=(4,))
    saved = tmp_path / "witness"
    assert _verify(runner, saved).exit_code == 0
    keys = _keys(client)
    with app.app_context():
        origin = transparency.origin()
    body = signed_note.checkpoint_body(origin, 6, _open(notes[6], keys).root)
    stranger = signed_note.sign(body, origin, Ed25519PrivateKey.generate())
    with pytest.raises(witness.NotSigned):
        witness.check(notes[4], stranger, keys, None)
    with pytest.raises(witness.NotSigned):
        witness.open_checkpoint(stranger, keys)
    # A genuine note whose text was edited, and a genuine signature under another log's name.
    edited = notes[6].replace("\n6\n", "\n7\n", 1)
    assert edited != notes[6]
    with pytest.raises(witness.NotSigned):
        witness.check(notes[4], edited, keys, None)
    with app.app_context():
        elsewhere = _sign_as_the_log(
            signed_note.checkpoint_body("evil.test/log", 6, _open(notes[6], keys).root)
        )
    with pytest.raises(witness.NotSigned, match="another log"):
        witness.check(notes[4], elsewhere, keys, None)
    # Served by the log: the witness refuses it and keeps its checkpoint.
    with app.app_context():
        db.session.execute(
            update(LogCheckpoint).where(LogCheckpoint.size == 6).values(note=stranger)
        )
        db.session.commit()
    result = _verify(runner, saved)
    assert result.exit_code == 1
    assert "NOT GENUINE" in result.output and "not signed by a trusted key" in result.output
    assert saved.read_text() == notes[6]


# --- 5. the witness end to end ------------------------------------------------------------------


def test_the_witness_keeps_the_first_checkpoint_and_follows_the_growth(
    app, client, runner, serve, tmp_path
):
    with app.app_context():
        _queue(_docs("w", 5))
        _sequence()
    saved = tmp_path / "witness.note"
    keys_file = tmp_path / "witness.note.keys"
    result = _verify(runner, saved)
    assert result.exit_code == 0, result.output
    assert "trusting the log's keys" in result.output
    assert f"first checkpoint kept: 5 entries ({ORIGIN})" in result.output
    assert saved.read_text() == _note(client)
    assert keys_file.read_text().split() == _keys(client)
    assert serve == [f"{BASE}{LOG}/keys", f"{BASE}{LOG}/checkpoint"]

    serve.clear()
    result = _verify(runner, saved)  # same size, same root
    assert result.exit_code == 0, result.output
    assert "consistent: 5 -> 5 entries (+0)" in result.output
    # The kept keys (the published ones only read for a new key cosigned by a trusted one),
    # no proof needed.
    assert serve == [f"{BASE}{LOG}/checkpoint", f"{BASE}{LOG}/keys"]

    previous = 5
    for grow in (7, 1, 19, 32):
        with app.app_context():
            _queue(_docs(f"w{grow}", grow))
            _sequence(limit=max(1, grow // 2))  # several checkpoints in between
            _sequence()
        serve.clear()
        result = _verify(runner, saved)
        assert result.exit_code == 0, result.output
        size = previous + grow
        assert f"consistent: {previous} -> {size} entries (+{grow})" in result.output
        assert f"{BASE}{LOG}/proof/consistency?from={previous}&to={size}" in serve
        assert saved.read_text() == _note(client)
        assert _open(saved.read_text(), _keys(client)).size == size
        previous = size


def test_the_witness_with_an_explicit_url_and_keys_file(app, client, runner, serve, tmp_path):
    with app.app_context():
        _queue(_docs("url", 3))
        _sequence()
    saved = tmp_path / "cp"
    keys_file = tmp_path / "trusted-keys"
    keys_file.write_text("\n".join(_keys(client)) + "\n")
    result = _verify(runner, saved, "--url", "https://log.example/", "--keys", str(keys_file))
    assert result.exit_code == 0, result.output
    assert "trusting" not in result.output
    assert serve == ["https://log.example/.well-known/transparency/checkpoint"]
    assert not (tmp_path / "cp.keys").exists()
    # With keys that do not include the log's: not genuine, nothing kept.
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    keys_file.write_text(signed_note.verifier_key(ORIGIN, stranger) + "\n")
    fresh = tmp_path / "cp2"
    result = _verify(runner, fresh, "--keys", str(keys_file))
    assert result.exit_code == 1 and "NOT GENUINE" in result.output
    assert not fresh.exists()


def test_the_witness_cannot_reach_the_log(app, client, runner, serve, tmp_path):
    with app.app_context():
        _queue(_docs("gone", 2))
        _sequence()
    saved = tmp_path / "cp"
    assert _verify(runner, saved).exit_code == 0
    with app.app_context():
        db.session.execute(delete(LogCheckpoint))
        db.session.commit()
    result = _verify(runner, saved)
    assert result.exit_code == 2
    assert "could not check the log" in result.output
    assert "REWRITTEN" not in result.output


def test_the_witness_after_a_key_rotation(app, client, runner, serve, tmp_path):
    """Old checkpoints keep verifying with the published keys. For 30 days after a rotation
    the retired key cosigns every checkpoint, so a witness that trusts only the old key goes
    on verifying, and learns the new key from a checkpoint both signed; after that the new
    key signs alone, and a witness that never ran in those days refuses until it is given
    the new key."""
    from freezegun import freeze_time

    with app.app_context():
        _queue(_docs("rot", 4))
        _sequence()
    saved, late = tmp_path / "cp", tmp_path / "late"
    assert _verify(runner, saved).exit_code == 0
    assert _verify(runner, late).exit_code == 0
    old_keys = _keys(client)
    with app.app_context():
        signing.rotate("test")
        db.session.commit()
        _queue(_docs("rot2", 4))
        _sequence()
    keys = _keys(client)
    assert len(keys) == 2 and keys[1] == old_keys[0]  # newest first
    assert _open(_note(client, 4), keys).size == 4
    assert _open(_note(client), old_keys).size == 8  # cosigned by the retired key
    assert _open(_note(client), [keys[0]]).size == 8  # and signed by the new one
    result = _verify(runner, saved)
    assert result.exit_code == 0 and "consistent: 4 -> 8" in result.output, result.output
    assert "new signing key, cosigned by a key this witness trusts" in result.output
    assert (tmp_path / "cp.keys").read_text().split() == [old_keys[0], keys[0]]

    with freeze_time(datetime.now(UTC) + timedelta(days=31)):
        with app.app_context():
            _queue(_docs("rot3", 4))
            _sequence()
        with pytest.raises(signed_note.NoteError):
            signed_note.open_note(_note(client), old_keys)  # the new key alone now
        result = _verify(runner, saved)  # learned it in time
        assert result.exit_code == 0 and "consistent: 8 -> 12" in result.output, result.output
        result = _verify(runner, late)  # never ran during the rollover
        assert result.exit_code == 1 and "not signed by a trusted key" in result.output
        (tmp_path / "late.keys").write_text("\n".join(keys) + "\n")
        result = _verify(runner, late)
        assert result.exit_code == 0 and "consistent: 4 -> 12" in result.output


def test_a_witness_started_before_the_first_checkpoint_keeps_no_keys(
    app, client, runner, serve, tmp_path
):
    """Was a defect (cli/transparency.py ``verify``, the keys branch): on the first run the keys are
    fetched and written to FROM.keys before anything is checked with them. Before Lethe has
    signed anything, /keys is empty (no signing key yet) and the checkpoint is 404: the run
    exits 2 but leaves an EMPTY keys file behind. Every later run reads that file, trusts no
    key, and reports "LOG REWRITTEN OR NOT GENUINE" (exit 1) about a perfectly honest log,
    until someone deletes the file by hand. It should not keep an empty key set (or should keep
    the keys only once a checkpoint verified with them)."""
    saved = tmp_path / "cp"
    result = _verify(runner, saved)
    assert result.exit_code == 2  # the log is empty: nothing to check yet
    with app.app_context():
        _queue(_docs("early", 3))
        _sequence()
    result = _verify(runner, saved)
    assert result.exit_code == 0, result.output
    assert "first checkpoint kept: 3 entries" in result.output


def test_flask_transparency_sequence_appends_everything_queued(app, client, runner):
    with app.app_context():
        docs = _queue(_docs("cli", 9))
    result = runner.invoke(args=["transparency", "sequence"])
    assert result.exit_code == 0, result.output
    assert "appended 9; the log has 9 entries" in result.output
    with app.app_context():
        assert _pending() == 0
        assert _stored_leaves() == list(enumerate(_leaf(d) for d in docs))
    assert _open(_note(client), _keys(client)).root == Ref([_leaf(d) for d in docs]).mth(0, 9)
    result = runner.invoke(args=["transparency", "sequence"])
    assert result.exit_code == 0 and "appended 0; the log has 9 entries" in result.output


def test_sequence_goes_on_past_a_batch_of_entries_already_in_the_log(app, runner):
    """Was a defect (cli/transparency.py ``sequence`` and rights/ledger/transparency.py
    ``sequence_steps``): both loops stop when ``transparency.sequence()`` returns 0, taking it
    for "nothing queued". But ``sequence`` also returns 0 when the batch it took (``BATCH``
    rows, oldest first) held only documents already in the log: it deletes those rows and
    appends nothing. Whatever was queued after them stays queued: ``flask transparency
    sequence`` says "appended 0" and leaves it, and a worker round appends it only a round
    later."""
    with app.app_context():
        _queue(["doc.dup.a"])
        assert _sequence() == 1
        for _ in range(transparency.BATCH):  # the same document queued again, many times
            transparency.queue("doc.dup.a", "receipt")
        transparency.queue("doc.dup.b", "receipt")
        db.session.commit()
    result = runner.invoke(args=["transparency", "sequence"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _pending() == 0, result.output
        assert _stored_leaves() == [(0, _leaf("doc.dup.a")), (1, _leaf("doc.dup.b"))]


# --- 6. the worker round ------------------------------------------------------------------------


def test_the_jobs_round_appends_and_the_mail_round_does_not(app, client):
    with app.app_context():
        docs = _queue(_docs("job", 4), "receipt")
        counts = jobs.run_due(roles=["mail"])
        assert "log_appended" not in counts
        assert _pending() == 4 and transparency.latest() is None
        counts = jobs.run_due(roles=["jobs"])
        assert counts["log_appended"] == 4
        assert _pending() == 0 and transparency.latest().size == 4
        assert jobs.run_due(roles=["jobs"])["log_appended"] == 0  # nothing queued: a read
        _queue(_docs("job2", 3))
        assert jobs.run_due(roles=["jobs"])["log_appended"] == 3
    leaves = [_leaf(d) for d in docs + _docs("job2", 3)]
    checkpoint = _open(_note(client), _keys(client))
    assert checkpoint.size == 7 and checkpoint.root == Ref(leaves).mth(0, 7)


@pytest.mark.parametrize(
    "answer",
    [
        '["not", "an", "object"]',
        '"a string"',
        '{"first": 1, "second": 2, "consistency_path": []}',
        '{"first": 5, "second": 9, "consistency_path": "AAAA"}',
    ],
)
def test_the_witness_calls_an_odd_proof_answer_a_rewritten_log(
    app, client, runner, serve, tmp_path, monkeypatch, answer
):
    """Found by review: a consistency answer that was not an object crashed the witness with a
    traceback; one for other sizes than asked must not be taken either."""
    with app.app_context():
        _queue(_docs("odd", 5))
        _sequence()
    saved = tmp_path / "cp"
    assert _verify(runner, saved).exit_code == 0
    with app.app_context():
        _queue(_docs("odd2", 4))
        _sequence()
    real = transparency_cli._fetch

    def fetch(url: str) -> str:
        return answer if "/proof/consistency" in url else real(url)

    monkeypatch.setattr(transparency_cli, "_fetch", fetch)
    result = _verify(runner, saved)
    assert result.exit_code == 1, result.output
    assert "LOG REWRITTEN OR NOT GENUINE" in result.output and "Traceback" not in result.output
