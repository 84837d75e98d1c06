"""README's outside witness (docs/witness_example.py), written from RFC 9162 and C2SP alone,
checks Lethe's log through its public endpoints: the log's proofs convince a verifier that
shares no code with it, and a rewritten log does not."""

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rights import jobs
from rights.ledger import signed_note, signing, transparency
from storage.db import db
from tests.test_transparency import _erase, _queue_documents

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "witness_example.py"
LOG = "/.well-known/transparency"


@pytest.fixture(scope="module")
def witness():
    spec = importlib.util.spec_from_file_location("witness_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_uses_no_lethe_code():
    tree = ast.parse(EXAMPLE.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"cryptography"}, imported


def _fetchers(client):
    def fetch(path: str) -> str:
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True))
        return resp.get_data(as_text=True)

    return fetch, lambda path: json.loads(fetch(path))


def test_the_example_witness_follows_the_log_as_it_grows(app, client, witness):
    fetch, fetch_json = _fetchers(client)
    notes = []
    with app.app_context():
        receipt = _erase(1).jws
        for batch in (1, 2, 5, 8, 13):  # with the receipt: trees of 2, 4, 9, 17 and 30 leaves
            for i in range(batch):
                transparency.queue(f"batch-{batch}-{i}", "statement")
            db.session.commit()
            jobs.run_due(roles=["jobs"])
            notes.append(fetch(f"{LOG}/checkpoint"))
    keys = fetch(f"{LOG}/keys").split()
    for i, old in enumerate(notes):
        for new in notes[i:]:
            said = witness.check_extends(old, new, keys, fetch_json)
            assert said.startswith(("consistent", "unchanged"))
    index = witness.check_included(receipt, notes[-1], keys, fetch_json)
    with app.app_context():
        assert transparency.placement(receipt).index == index


def test_the_example_witness_catches_a_fork_and_a_truncation(app, client, witness):
    fetch, fetch_json = _fetchers(client)
    with app.app_context():
        _queue_documents(5)
        jobs.run_due(roles=["jobs"])
        first = fetch(f"{LOG}/checkpoint")
        _queue_documents(3, kind="receipt")
        jobs.run_due(roles=["jobs"])
        second = fetch(f"{LOG}/checkpoint")
        keys = fetch(f"{LOG}/keys").split()
        # The operator signs another tree of the same size (its own key: the signature holds).
        checkpoint = signed_note.parse_checkpoint(signed_note.split_note(second)[0])
        forked = signed_note.sign(
            signed_note.checkpoint_body(checkpoint.origin, checkpoint.size, b"\x07" * 32),
            checkpoint.origin,
            signing.ed25519_private_key(signing.current_key()),
        )
    with pytest.raises(witness.Rewritten, match="forked"):
        witness.check_extends(second, forked, keys, fetch_json)
    with pytest.raises(witness.Rewritten, match="shrank"):
        witness.check_extends(second, first, keys, fetch_json)
    # A tree that does not extend the first: the real proof does not lead to the forged root.
    with pytest.raises(witness.Rewritten, match="does not extend"):
        witness.check_extends(first, forked, keys, fetch_json)
    # A checkpoint signed by a key the witness does not trust is refused.
    with pytest.raises(ValueError, match="no trusted key"):
        witness.open_checkpoint(second, [signed_note.verifier_key("other", b"\x01" * 32)])


def test_the_example_as_a_command_keeps_state_and_exits_as_documented(
    app, client, witness, tmp_path, monkeypatch, capsys
):
    import contextlib
    import io

    def urlopen(url, timeout=None):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        resp = client.get(path)
        if resp.status_code != 200:
            raise OSError(f"{resp.status_code} for {path}")
        return contextlib.closing(io.BytesIO(resp.data))

    monkeypatch.setattr(witness.urllib.request, "urlopen", urlopen)
    state = tmp_path / "state"
    # Nothing signed yet: nothing can be checked, and no key is kept.
    assert witness.main(["http://lethe.test", str(state)]) == 2
    assert not (state / "keys").exists()
    with app.app_context():
        receipt = _erase(1).jws
        jobs.run_due(roles=["jobs"])
    (tmp_path / "receipt.jws").write_text(receipt)
    assert (
        witness.main(["http://lethe.test", str(state), "--receipt", str(tmp_path / "receipt.jws")])
        == 0
    )
    assert "first checkpoint kept; the receipt is leaf 0" in capsys.readouterr().out
    with app.app_context():
        transparency.queue("later.document", "statement")
        db.session.commit()
        jobs.run_due(roles=["jobs"])
    assert witness.main(["http://lethe.test", str(state)]) == 0
    assert "consistent: 1 -> 2 entries" in capsys.readouterr().out
    # The kept checkpoint replaced by a forged one of the same size: a fork.
    kept = (state / "checkpoint").read_text()
    with app.app_context():
        forged = signed_note.sign(
            signed_note.checkpoint_body(transparency.origin(), 2, b"\x09" * 32),
            transparency.origin(),
            signing.ed25519_private_key(signing.current_key()),
        )
    (state / "checkpoint").write_text(forged)
    assert witness.main(["http://lethe.test", str(state)]) == 1
    assert "forked" in capsys.readouterr().err
    (state / "checkpoint").write_text(kept)
    assert witness.main(["http://lethe.test", str(state)]) == 0
