"""An outside witness of a Lethe transparency log, written from the public specifications only
(RFC 9162 section 2.1, C2SP signed-note and tlog-checkpoint): no Lethe code, nothing but the
Python standard library and `cryptography` for Ed25519. README's "The transparency log" walks
through it; tests/test_transparency_witness_example.py runs it against Lethe.

    python docs/witness_example.py https://privacy.example.com STATE_DIR [--receipt FILE]

The first run keeps the log's verifier keys and its checkpoint in STATE_DIR, once the keys
verify the checkpoint. Every later run
fetches the checkpoint now, checks its signature with the kept keys, asks for the consistency
proof from the kept checkpoint to it, checks it, and keeps the new checkpoint — or exits 1,
saying the log was rewritten. With --receipt, it also checks that the receipt (a compact JWS)
is in the log. Exit 0: the log only grew; 1: it was rewritten or is not genuine; 2: it
could not be checked (unreachable, an answer that is not what the specifications say).
"""

import base64
import hashlib
import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

WELL_KNOWN = "/.well-known/transparency"


class Rewritten(Exception):
    pass


# --- C2SP signed-note and tlog-checkpoint -------------------------------------------------


def parse_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """'<name>+<8 hex digits key id>+<base64(0x01 || 32-byte Ed25519 key)>'."""
    name, key_id_hex, key_b64 = vkey.strip().split("+", 2)  # base64 may hold "+" too
    key = _b64(key_b64)
    if key[0] != 0x01 or len(key) != 33:
        raise ValueError("not an Ed25519 verifier key")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex.lower():
        raise ValueError("the verifier key's id does not match its name and key")
    return name, key_id, key[1:]


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)  # no characters silently dropped


def open_checkpoint(note: str, vkeys: list[str]) -> tuple[str, int, bytes]:
    """(origin, size, root hash) of a checkpoint one of ``vkeys`` signed."""
    if not note.endswith("\n") or "\n\n" not in note:
        raise ValueError("not a signed note")
    text, _, signatures = note[:-1].rpartition("\n\n")
    text += "\n"  # the signed text ends with its newline, before the blank line
    trusted = {}
    for vkey in vkeys:
        name, key_id, key = parse_vkey(vkey)
        trusted[(name, key_id)] = key
    verified = False
    for line in signatures.split("\n"):
        if not line.startswith("\u2014 "):
            raise ValueError("a signature line must start with an em dash and a space")
        name, b64 = line[2:].split(" ")
        blob = _b64(b64)
        key = trusted.get((name, blob[:4]))
        if key is None:
            continue  # a signer we do not know (a cosigner): ignored
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise ValueError("a trusted key's signature does not verify") from None
        verified = True
    if not verified:
        raise ValueError("no trusted key signed this checkpoint")
    lines = text.split("\n")  # only "\n" ends a line in a note
    origin, size, root = lines[0], lines[1], _b64(lines[2])
    if not re.fullmatch("0|[1-9][0-9]*", size) or len(root) != 32:
        raise ValueError("not a checkpoint: the size or the root hash is malformed")
    return origin, int(size), root


# --- RFC 9162 section 2.1 ------------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash_of(jws: str) -> bytes:
    """A Lethe log entry is SHA-256 of the document; its leaf hash is SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + hashlib.sha256(jws.encode("ascii")).digest()).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, path: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, for 0 < m < n."""
    if not 0 < m < n or not path:
        return False
    if m & (m - 1) == 0:  # m is a power of two: the proof starts from the old root itself
        path = [root_m, *path]
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


# --- the witness ---------------------------------------------------------------------------


def check_extends(old_note: str, new_note: str, vkeys: list[str], fetch_json) -> str:
    """Raise Rewritten unless the log in ``new_note`` extends the one in ``old_note``."""
    origin, m, root_m = open_checkpoint(old_note, vkeys)
    new_origin, n, root_n = open_checkpoint(new_note, vkeys)
    if new_origin != origin:
        raise Rewritten("the new checkpoint is for another log")
    if n < m:
        raise Rewritten(f"the log shrank from {m} to {n} entries")
    if n == m:
        if root_n != root_m:
            raise Rewritten(f"two different trees of {m} entries: the log forked")
        return f"unchanged at {n} entries"
    proof = fetch_json(f"{WELL_KNOWN}/proof/consistency?from={m}&to={n}")
    if (proof.get("first"), proof.get("second")) != (m, n):
        raise Rewritten("the consistency proof is not for the sizes asked")
    path = [_b64(h) for h in proof["consistency_path"]]
    if not verify_consistency(m, n, root_m, root_n, path):
        raise Rewritten(f"the log of {n} entries does not extend the one of {m} we kept")
    return f"consistent: {m} -> {n} entries"


def check_included(jws: str, note: str, vkeys: list[str], fetch_json) -> int:
    """The receipt's leaf index, once its inclusion proof checks out against ``note``."""
    _, size, root = open_checkpoint(note, vkeys)
    leaf = leaf_hash_of(jws)
    query = urllib.parse.urlencode({"leaf": leaf.hex(), "size": size})
    proof = fetch_json(f"{WELL_KNOWN}/proof/inclusion?{query}")
    index = proof["leaf_index"]
    if type(index) is not int or not 0 <= index < size or proof.get("tree_size") != size:
        raise Rewritten("the inclusion proof names no leaf of the tree asked")
    path = [_b64(h) for h in proof["inclusion_path"]]
    if not verify_inclusion(leaf, index, size, path, root):
        raise Rewritten("the receipt's inclusion proof does not check out")
    return index


def main(argv: list[str]) -> int:
    base, state = argv[0].rstrip("/"), Path(argv[1])
    receipt = Path(argv[argv.index("--receipt") + 1]) if "--receipt" in argv else None

    def fetch(path: str) -> str:
        with urllib.request.urlopen(base + path, timeout=30) as answer:  # noqa: S310
            return answer.read().decode()

    def fetch_json(path: str) -> dict:
        return json.loads(fetch(path))

    state.mkdir(parents=True, exist_ok=True)
    keys_file, kept = state / "keys", state / "checkpoint"
    try:
        first = not keys_file.exists()
        vkeys = (fetch(f"{WELL_KNOWN}/keys") if first else keys_file.read_text()).split()
        new_note = fetch(f"{WELL_KNOWN}/checkpoint")
        try:
            open_checkpoint(new_note, vkeys)
        except ValueError as exc:
            raise Rewritten(f"the checkpoint is not signed by a trusted key ({exc})") from None
        if first:
            keys_file.write_text("".join(f"{k}\n" for k in vkeys))  # trusted from now on
        said = (
            check_extends(kept.read_text(), new_note, vkeys, fetch_json)
            if kept.exists()
            else "first checkpoint kept"
        )
        if receipt is not None:
            index = check_included(receipt.read_text().strip(), new_note, vkeys, fetch_json)
            said += f"; the receipt is leaf {index}"
    except Rewritten as exc:
        print(f"THE LOG WAS REWRITTEN OR IS NOT GENUINE: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"could not check the log: {exc!r}", file=sys.stderr)
        return 2
    kept.write_text(new_note)
    print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
