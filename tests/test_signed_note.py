"""Signed notes and checkpoints (rights/ledger/signed_note.py): the C2SP formats, pure functions.

Test vectors come from the specs' own texts: the PeterNeumann key and note (and its EnochRoot
cosigned form) from the package documentation of golang.org/x/mod/sumdb/note, the reference the
signed-note spec grew out of; the example notes of c2sp.org/signed-note and
c2sp.org/tlog-checkpoint (whose public keys the specs do not give, so only their form is checked).
"""

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rights.ledger import signed_note
from rights.ledger.signed_note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    add_signature,
    checkpoint_body,
    key_id,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign,
    split_note,
    verifier_key,
)

DASH = "\u2014 "  # em dash and space: every signature line starts so

# golang.org/x/mod/sumdb/note, package documentation ("Example").
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG_LINE = (
    DASH + "PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngo"
    "tpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIG_LINE
GO_COSIGNED_NOTE = (
    GO_NOTE
    + DASH
    + "EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33"
    "WWd1RvMc+QQ=\n"
)

# c2sp.org/signed-note, the introduction's example (the text has a blank line of its own).
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
    "\n"
    + DASH
    + "quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQ"
    "U0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# c2sp.org/tlog-checkpoint, the introduction's example.
SPEC_CHECKPOINT_BODY = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_CHECKPOINT = (
    SPEC_CHECKPOINT_BODY
    + "\n"
    + DASH
    + "example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2"
    "q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def go_private_key() -> Ed25519PrivateKey:
    """The Go example's signer key: "PRIVATE+KEY+<name>+<id>+base64(0x01 || 32-byte seed)"."""
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01 and len(raw) == 33
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def independent_key_id(name: str, public_key: bytes) -> bytes:
    """The spec's formula, written out here apart from the module's."""
    h = hashlib.sha256()
    h.update(name.encode("utf-8"))
    h.update(bytes([0x0A]))
    h.update(bytes([0x01]))
    h.update(public_key)
    return h.digest()[0:4]


def signature_line(name: str, payload: bytes) -> str:
    return DASH + name + " " + base64.b64encode(payload).decode() + "\n"


@pytest.fixture(scope="module")
def alice() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bob() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


BODY = "lethe.example/audit\n42\n" + base64.b64encode(bytes(range(32))).decode() + "\n"


# --- Test vectors -------------------------------------------------------------------------------


def test_go_example_verifier_key_parses_and_its_key_id_matches_the_formula():
    name, kid, public_key = parse_verifier_key(GO_VKEY)
    assert name == "PeterNeumann"
    assert kid == bytes.fromhex("c74f20a3")
    assert len(public_key) == 32
    assert independent_key_id(name, public_key) == kid
    assert key_id(name, public_key) == kid
    assert verifier_key(name, public_key) == GO_VKEY
    # The example's private key is the one behind the example's verifier key.
    assert raw_public(go_private_key()) == public_key


def test_go_example_note_verifies_with_the_example_key():
    assert open_note(GO_NOTE, [GO_VKEY]) == (GO_TEXT, ["PeterNeumann"])
    name, kid, public_key = parse_verifier_key(GO_VKEY)
    assert open_note(GO_NOTE, [(name, public_key)]) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(GO_NOTE, {(name, kid): public_key}) == (GO_TEXT, ["PeterNeumann"])
    assert open_note(GO_NOTE.encode(), [GO_VKEY]) == (GO_TEXT, ["PeterNeumann"])


def test_signing_the_go_example_text_gives_the_example_note_byte_for_byte():
    # Ed25519 is deterministic, so the example signature is reproducible.
    assert sign(GO_TEXT, "PeterNeumann", go_private_key()) == GO_NOTE


def test_go_cosigned_example_verifies_and_ignores_the_unknown_cosigner():
    assert open_note(GO_COSIGNED_NOTE, [GO_VKEY]) == (GO_TEXT, ["PeterNeumann"])
    _, signatures = split_note(GO_COSIGNED_NOTE)
    assert [s.name for s in signatures] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(NoteError, match="no known key"):
        open_note(GO_COSIGNED_NOTE, [])


def test_spec_example_note_splits_at_its_last_blank_line():
    body, signatures = split_note(SPEC_NOTE)
    assert body == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed \u00e8 subito sera.\n"
    )
    [signature] = signatures
    assert signature.name == "quasimodo.example/salvatore"
    assert len(signature.key_id) == 4 and len(signature.signature) == 64
    # The spec gives no key for it: nothing known signed it.
    with pytest.raises(NoteError, match="no known key"):
        open_note(SPEC_NOTE, [GO_VKEY])


def test_spec_example_checkpoint_parses_and_its_body_is_rebuilt_exactly():
    body, [signature] = split_note(SPEC_CHECKPOINT)
    assert body == SPEC_CHECKPOINT_BODY
    assert signature.name == "example.com/behind-the-sofa"
    assert len(signature.key_id + signature.signature) == 68
    checkpoint = parse_checkpoint(body)
    assert checkpoint == Checkpoint(
        origin="example.com/behind-the-sofa",
        size=20852163,
        root=base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    assert len(checkpoint.root) == 32
    assert checkpoint.body() == SPEC_CHECKPOINT_BODY
    assert checkpoint_body(checkpoint.origin, checkpoint.size, checkpoint.root) == body


# --- Keys ---------------------------------------------------------------------------------------


def test_key_id_matches_an_independent_computation(alice):
    for name in ("lethe.example/audit", "PeterNeumann", "caf\u00e9.example/log"):
        assert key_id(name, raw_public(alice)) == independent_key_id(name, raw_public(alice))
    assert key_id("a", raw_public(alice)) != key_id("b", raw_public(alice))


def test_verifier_key_round_trip(alice):
    vkey = verifier_key("lethe.example/audit", raw_public(alice))
    name, hex_id, encoded = vkey.split("+", 2)
    assert name == "lethe.example/audit"
    assert hex_id == independent_key_id(name, raw_public(alice)).hex()
    assert base64.b64decode(encoded) == b"\x01" + raw_public(alice)
    assert parse_verifier_key(vkey) == (name, bytes.fromhex(hex_id), raw_public(alice))


GO_NAME, GO_ID, GO_KEY64 = GO_VKEY.split("+", 2)
GO_KEY = base64.b64decode(GO_KEY64)[1:]


SHORT_KEY64 = base64.b64encode(bytes([1]) + GO_KEY[:31]).decode()
LONG_KEY64 = base64.b64encode(bytes([1]) + GO_KEY + bytes(1)).decode()
ECDSA_TYPE_KEY64 = base64.b64encode(bytes([2]) + GO_KEY).decode()
UNTYPED_KEY64 = base64.b64encode(GO_KEY).decode()


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        GO_NAME,
        f"{GO_NAME}+{GO_ID}",
        f"+{GO_ID}+{GO_KEY64}",  # empty name
        f"Peter Neumann+{GO_ID}+{GO_KEY64}",  # space in the name
        f"{GO_NAME}+{GO_ID[:7]}+{GO_KEY64}",  # key ID of 7 hex digits
        f"{GO_NAME}+{GO_ID}a+{GO_KEY64}",  # key ID of 9 hex digits
        f"{GO_NAME}+c74f20zz+{GO_KEY64}",  # key ID not hex
        f"{GO_NAME}+c74f20a4+{GO_KEY64}",  # key ID not the key's
        f"{GO_NAME}+{GO_ID}+{GO_KEY64[:-1]}",  # base64 cut short
        f"{GO_NAME}+{GO_ID}+{GO_KEY64}=",  # stray padding
        f"{GO_NAME}+{GO_ID}+{SHORT_KEY64}",  # 31-byte key
        f"{GO_NAME}+{GO_ID}+{LONG_KEY64}",  # 33-byte key
        f"{GO_NAME}+{GO_ID}+{ECDSA_TYPE_KEY64}",  # signature type 0x02, not Ed25519
        f"{GO_NAME}+{GO_ID}+{UNTYPED_KEY64}",  # no signature type byte
    ],
)
def test_parse_verifier_key_rejects_bad_input(vkey):
    with pytest.raises(ValueError):
        parse_verifier_key(vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\nb"])
def test_invalid_key_names_are_refused(name, alice):
    with pytest.raises(ValueError):
        key_id(name, raw_public(alice))
    with pytest.raises(ValueError):
        sign(BODY, name, alice)


def test_key_id_wants_a_32_byte_public_key():
    with pytest.raises(ValueError):
        key_id("x", b"\x00" * 31)


# --- Notes --------------------------------------------------------------------------------------


def test_sign_and_open_round_trip(alice):
    note = sign(BODY, "lethe.example/audit", alice)
    body, rest = note.split("\n\n", 1)
    assert body + "\n" == BODY
    assert rest.startswith(DASH + "lethe.example/audit ")
    assert rest.endswith("\n") and rest.count("\n") == 1
    payload = base64.b64decode(rest[len(DASH) + len("lethe.example/audit ") :])
    assert payload[:4] == independent_key_id("lethe.example/audit", raw_public(alice))
    assert len(payload) == 68
    assert open_note(note, [("lethe.example/audit", raw_public(alice))]) == (
        BODY,
        ["lethe.example/audit"],
    )


def test_a_body_with_blank_lines_round_trips(alice):
    body = "first\n\nthird\n\n"
    note = sign(body, "k", alice)
    assert open_note(note, [("k", raw_public(alice))]) == (body, ["k"])


def test_cosigning_adds_a_signature_and_both_verify(alice, bob):
    note = sign(BODY, "log", alice)
    cosigned = add_signature(note, "witness", bob)
    assert cosigned.startswith(note)
    both = [("log", raw_public(alice)), ("witness", raw_public(bob))]
    assert open_note(cosigned, both) == (BODY, ["log", "witness"])
    assert open_note(cosigned, [("witness", raw_public(bob))]) == (BODY, ["witness"])
    # Signing again with the same key replaces its line rather than repeating it.
    assert add_signature(cosigned, "witness", bob) == cosigned
    assert len(split_note(add_signature(cosigned, "log", alice))[1]) == 2


def test_cosigning_with_verifiers_signs_only_a_verified_note(alice, bob):
    note = sign(BODY, "log", alice)
    cosigned = add_signature(note, "witness", bob, verifiers=[("log", raw_public(alice))])
    assert open_note(cosigned, [("witness", raw_public(bob))]) == (BODY, ["witness"])
    with pytest.raises(NoteError):
        add_signature(note, "witness", bob, verifiers=[("log", raw_public(bob))])


def test_a_signature_by_the_wrong_key_is_rejected(alice, bob):
    note = sign(BODY, "log", bob)
    # Listed under the expected name but with another key: its key ID differs, so no known key.
    with pytest.raises(NoteError, match="no known key"):
        open_note(note, [("log", raw_public(alice))])
    # Same name and key ID as a known key, but not that key's signature: it must fail.
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, {("log", key_id("log", raw_public(bob))): raw_public(alice)})


def test_a_failing_signature_by_a_known_key_rejects_the_whole_note(alice, bob):
    note = sign(BODY, "log", alice)
    forged = signature_line("witness", key_id("witness", raw_public(bob)) + bytes(64))
    both = [("log", raw_public(alice)), ("witness", raw_public(bob))]
    with pytest.raises(NoteError, match="witness.*does not verify"):
        open_note(note + forged, both)


@pytest.mark.parametrize("position", [0, 5, len(BODY) - 2])
def test_a_body_altered_by_one_character_is_rejected(position, alice):
    note = sign(BODY, "log", alice)
    replacement = "X" if note[position] != "X" else "Y"
    altered = note[:position] + replacement + note[position + 1 :]
    with pytest.raises(NoteError, match="does not verify"):
        open_note(altered, [("log", raw_public(alice))])


def test_unknown_signers_are_ignored_and_the_known_one_verified(alice, bob):
    stranger = Ed25519PrivateKey.generate()
    note = add_signature(sign(BODY, "stranger", stranger), "log", alice)
    # Same name as the known key, other key (so other key ID): unknown, ignored.
    note = add_signature(note, "log-2", bob).replace(DASH + "log-2 ", DASH + "log ")
    # Same key ID as the known key, other name: unknown, ignored (even with a bad signature).
    note += signature_line("other", key_id("log", raw_public(alice)) + bytes(64))
    assert len(split_note(note)[1]) == 4
    assert open_note(note, [("log", raw_public(alice))]) == (BODY, ["log"])


def test_verifiers_given_as_a_mapping_use_the_stated_key_ids(alice):
    note = sign(BODY, "log", alice)
    kid = key_id("log", raw_public(alice))
    assert open_note(note, {("log", kid): raw_public(alice)}) == (BODY, ["log"])
    with pytest.raises(NoteError, match="no known key"):
        open_note(note, {("log", bytes(4)): raw_public(alice)})


@pytest.mark.parametrize(
    "verifiers",
    [
        [("log", bytes(31))],
        {("log", bytes(3)): bytes(32)},
        {("log", bytes(4)): bytes(31)},
        {("a b", bytes(4)): bytes(32)},
        ["log+00000000+AAAA"],
        "log",
    ],
)
def test_malformed_verifiers_are_refused(verifiers, alice):
    with pytest.raises(ValueError):
        open_note(sign(BODY, "log", alice), verifiers)


def test_up_to_max_signatures_are_accepted(alice):
    # The spec asks verifiers to accept at least 16 signatures.
    assert MAX_SIGNATURES >= 16
    keys = [Ed25519PrivateKey.generate() for _ in range(16)]
    note = sign(BODY, "k0", keys[0])
    for i, k in enumerate(keys[1:], 1):
        note = add_signature(note, f"k{i}", k)
    verifiers = [(f"k{i}", raw_public(k)) for i, k in enumerate(keys)]
    assert open_note(note, verifiers) == (BODY, [f"k{i}" for i in range(16)])
    filler = signature_line("stranger", bytes(68))
    note = sign(BODY, "log", alice) + filler * (MAX_SIGNATURES - 1)
    assert open_note(note, [("log", raw_public(alice))]) == (BODY, ["log"])


def test_too_many_signatures_are_rejected(alice):
    note = sign(BODY, "log", alice) + signature_line("stranger", bytes(68)) * MAX_SIGNATURES
    with pytest.raises(NoteError, match="more than"):
        open_note(note, [("log", raw_public(alice))])
    with pytest.raises(NoteError, match="at most"):
        add_signature(note[: note.rfind(DASH)], "another", Ed25519PrivateKey.generate())


def test_too_large_a_note_is_rejected(alice):
    body = ("x" * 1000 + "\n") * (MAX_NOTE_BYTES // 1001 + 1)
    with pytest.raises(NoteError, match="at most"):
        sign(body, "log", alice)
    note = body + "\n" + signature_line("log", bytes(68))
    with pytest.raises(NoteError, match="larger than"):
        open_note(note, [("log", raw_public(alice))])
    with pytest.raises(NoteError, match="larger than"):
        open_note(note.encode(), [("log", raw_public(alice))])


def _malformed(note: str) -> dict[str, str]:
    """Ways to break a well-formed note ``note`` (a body and one signature line)."""
    body, line = note[: note.rfind("\n\n") + 1], note[note.rfind("\n\n") + 2 :]
    name, encoded = line[len(DASH) : -1].split(" ")
    raw = base64.b64decode(encoded)
    assert encoded.endswith("=") and not encoded.endswith("==")
    bump = chr(ord(encoded[-2]) + 1)
    assert base64.b64decode(encoded[:-2] + bump + "=") == raw
    return {
        "missing blank line": body + line,
        "no trailing newline": note[:-1],
        "blank line after the signatures": note + "\n",
        "no signature lines": body + "\n",
        "body without final newline": body[:-1] + "\n" + line,
        "bad base64": body + "\n" + DASH + name + " " + encoded[:-2] + "!!\n",
        "unpadded base64": body + "\n" + DASH + name + " " + encoded.rstrip("=") + "\n",
        "base64 with a space": body + "\n" + signature_line(name, raw)[:20] + " " + line[20:],
        # The same bytes, but with a padding bit set in the last character.
        "non-canonical base64": body + "\n" + DASH + name + " " + encoded[:-2] + bump + "=\n",
        "key id only": body + "\n" + signature_line(name, raw[:4]),
        "short key id": body + "\n" + signature_line(name, raw[:3]),
        "empty signature": body + "\n" + DASH + name + " \n",
        "hyphen instead of em dash": body + "\n" + line.replace("\u2014", "-", 1),
        "en dash instead of em dash": body + "\n" + line.replace("\u2014", "\u2013", 1),
        "two hyphens instead of em dash": body + "\n" + line.replace("\u2014", "--", 1),
        "em dash without space": body + "\n" + line.replace(DASH, "\u2014", 1),
        "no space before the signature": body + "\n" + DASH + name + encoded + "\n",
        "empty key name": body + "\n" + DASH + " " + encoded + "\n",
        "plus in key name": body + "\n" + DASH + name + "+x " + encoded + "\n",
        "line that is not a signature": body + "\n" + line + "trailing text\n",
        "carriage returns": note.replace("\n", "\r\n"),
        "tab in the body": "\t" + note,
        "NUL in the body": "\x00" + note,
        "lone surrogate": "\ud800" + note,
    }


@pytest.mark.parametrize("case", sorted(_malformed(GO_NOTE)))
def test_malformed_notes_are_rejected(case):
    bad = _malformed(GO_NOTE)[case]
    with pytest.raises(NoteError):
        open_note(bad, [GO_VKEY])


def test_the_note_the_malformed_cases_start_from_is_well_formed():
    [signature] = split_note(GO_NOTE)[1]
    assert signature.name == "PeterNeumann"
    assert signature.key_id == bytes.fromhex("c74f20a3")
    assert len(signature.signature) == 64


def test_invalid_utf8_bytes_are_rejected():
    with pytest.raises(NoteError, match="UTF-8"):
        open_note(b"\xff" + GO_NOTE.encode(), [GO_VKEY])


def test_sign_refuses_a_body_that_would_make_a_malformed_note(alice):
    for body in ["", "no newline", "tab\there\n", "cr\r\n", "\ud800\n"]:
        with pytest.raises(NoteError):
            sign(body, "log", alice)
    with pytest.raises(ValueError):
        sign(BODY, "log", "not a key")  # type: ignore[arg-type]


def test_no_error_message_carries_the_body(alice):
    note = sign("secret text\n", "log", alice)
    with pytest.raises(NoteError) as caught:
        open_note(note.replace("secret", "Secret"), [("log", raw_public(alice))])
    assert "secret" not in str(caught.value).lower()


# --- Checkpoints --------------------------------------------------------------------------------


def test_checkpoint_round_trip_through_a_signed_note(alice):
    root = hashlib.sha256(b"leaves").digest()
    body = checkpoint_body("lethe.example/audit", 7, root, ["ext one", "ext-two"])
    assert body == (
        "lethe.example/audit\n7\n" + base64.b64encode(root).decode() + "\next one\next-two\n"
    )
    note = sign(body, "lethe.example/audit", alice)
    opened, signers = open_note(note, [verifier_key("lethe.example/audit", raw_public(alice))])
    assert signers == ["lethe.example/audit"]
    checkpoint = parse_checkpoint(opened)
    assert checkpoint == Checkpoint("lethe.example/audit", 7, root, ("ext one", "ext-two"))
    assert checkpoint.body() == body


def test_empty_tree_checkpoint():
    root = hashlib.sha256(b"").digest()  # RFC 6962: the hash of an empty tree
    body = checkpoint_body("o", 0, root)
    assert body.split("\n")[1] == "0"
    assert parse_checkpoint(body) == Checkpoint("o", 0, root)


ROOT64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "body",
    [
        "",
        "o\n1\n" + ROOT64,  # no final newline
        "o\n1\n",  # no root
        "o\n1\n" + ROOT64 + "\n\n",  # empty extension line
        "o\n1\n" + ROOT64 + "\n\next\n",
        "\n1\n" + ROOT64 + "\n",  # empty origin
        "o\n\n" + ROOT64 + "\n",  # empty size
        "o\n01\n" + ROOT64 + "\n",  # leading zero
        "o\n00\n" + ROOT64 + "\n",
        "o\n+1\n" + ROOT64 + "\n",
        "o\n-1\n" + ROOT64 + "\n",
        "o\n 1\n" + ROOT64 + "\n",
        "o\n1 \n" + ROOT64 + "\n",
        "o\n1_000\n" + ROOT64 + "\n",
        "o\n0x10\n" + ROOT64 + "\n",
        "o\n\u0661\n" + ROOT64 + "\n",  # ARABIC-INDIC DIGIT ONE: a digit, but not ASCII
        "o\n18446744073709551616\n" + ROOT64 + "\n",  # 2**64
        "o\n" + "9" * 5000 + "\n" + ROOT64 + "\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",  # 31-byte root
        "o\n1\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "o\n1\n" + ROOT64.rstrip("=") + "\n",  # unpadded
        "o\n1\n" + ROOT64[:-2] + "B=\n",  # non-canonical trailing bits
        "o\n1\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",  # URL alphabet
        "o\n1\n" + ROOT64 + "\r\n",
        "o\t\n1\n" + ROOT64 + "\n",
    ],
)
def test_malformed_checkpoints_are_rejected(body):
    with pytest.raises(NoteError):
        parse_checkpoint(body)


def test_largest_tree_size_parses():
    body = checkpoint_body("o", 2**64 - 1, bytes(32))
    assert parse_checkpoint(body).size == 2**64 - 1


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, bytes(32), ()),
        ("a\nb", 1, bytes(32), ()),
        ("a\tb", 1, bytes(32), ()),
        ("o", -1, bytes(32), ()),
        ("o", 2**64, bytes(32), ()),
        ("o", True, bytes(32), ()),
        ("o", 1.0, bytes(32), ()),
        ("o", 1, bytes(31), ()),
        ("o", 1, bytes(33), ()),
        ("o", 1, ROOT64, ()),
        ("o", 1, bytes(32), [""]),
        ("\ud800", 1, bytes(32), ()),
        ("o", 1, bytes(32), ["a\nb"]),
    ],
)
def test_checkpoint_body_refuses_what_cannot_be_written(origin, size, root, extensions):
    with pytest.raises(ValueError):
        checkpoint_body(origin, size, root, extensions)


def test_the_module_is_pure():
    # No database, no Flask, nothing of the service: the standard library and cryptography.
    source = Path(signed_note.__file__).read_text(encoding="utf-8")
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    allowed = {"base64", "binascii", "hashlib", "re", "collections", "dataclasses", "typing"}
    assert imported <= allowed | {"cryptography"}
