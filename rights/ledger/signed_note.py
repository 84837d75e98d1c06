"""Signed notes and transparency-log checkpoints (C2SP ``signed-note`` and ``tlog-checkpoint``).

A *signed note* is a piece of UTF-8 text followed by one or more signatures, all in plain text:

    <the text, any number of lines, ending in a newline>
    <a blank line>
    — <key name> <base64(key ID || signature)>
    — <another key name> <base64(...)>

Each signature line starts with an em dash (U+2014) and a space, then the signer's key name (not
empty, no spaces, no ``+``), a space, and the standard base64 (RFC 4648, padded) of four bytes of
key ID followed by the signature itself. The signed bytes are the text including its final
newline, but not the blank line. The text may itself contain blank lines: it ends at the *last*
blank line of the note. The whole note must be valid UTF-8 with no control characters other
than the newline (so no tabs and no carriage returns).

A key is identified by the pair (key name, key ID); the ID is only a short label, not a secure
hash. For Ed25519 (signature type ``0x01``, the only type this module handles) the key ID is the
first four bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key), and a signature is
the 64-byte RFC 8032 signature, so each signature line carries 68 bytes of base64. A public key
is passed around as a *verifier key*: ``<name>+<key ID as 8 hex digits>+<base64(0x01 || key)>``.

Reading a note (:func:`open_note`): the text means nothing until a trusted key's signature over
it has verified. Signatures by keys the reader does not know are ignored (that is what lets
others cosign a note, and lets a signer rotate keys), even when they share a name or a key ID
(but not both) with a known key. A signature by a known key must verify, and when one does not
the whole note is rejected; a note with no verified signature at all is rejected too. The spec
asks readers to bound the work a note can cause while accepting at least 16 signatures: here a
note may carry at most :data:`MAX_SIGNATURES` signature lines and :data:`MAX_NOTE_BYTES` bytes.

A *checkpoint* is a note whose text is the head of a transparency log's Merkle tree, one item a
line: the log's origin (a non-empty name, by convention a schema-less URL such as
``example.com/log42``), the tree size (decimal, no leading zeros; ``0`` for an empty tree), the
base64 of the 32-byte RFC 6962 root hash, then optional non-empty *extension lines*, which the
spec discourages because log monitors cannot audit them. The log's key name should match the
origin; checking that is up to the caller.

This module is pure: text and bytes in, text and bytes out, Ed25519 through ``cryptography``.
Specs: https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint.
"""

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
"""Signature type identifier byte of Ed25519 in the signed-note spec."""

KEY_ID_SIZE = 4
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
HASH_SIZE = 32
"""Size of an RFC 6962 (SHA-256) Merkle tree root hash."""

MAX_SIGNATURES = 100
"""Most signature lines a note may have (the spec requires accepting at least 16)."""

MAX_NOTE_BYTES = 1 << 20
"""Most bytes (UTF-8) a note may have, signatures included."""

MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size a checkpoint may state (RFC 6962 tree sizes are 64-bit)."""

SIGNATURE_PREFIX = "\u2014 "
"""What every signature line starts with: an em dash (U+2014) and a space."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


class NoteError(ValueError):
    """A note or checkpoint that is malformed, or whose signatures do not check out."""


class NoteSignature(NamedTuple):
    """One signature line of a note, parsed but not verified."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    """The parsed text of a checkpoint: which log, how many leaves, and their Merkle root."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint's note text (see :func:`checkpoint_body`)."""
        return checkpoint_body(self.origin, self.size, self.root, self.extensions)


Verifiers = Mapping[tuple[str, bytes], bytes] | Iterable[tuple[str, bytes] | str]
"""Known keys: ``{(name, key ID): public key}``, or a list of ``(name, public key)`` pairs and
verifier key strings (their key IDs computed as the spec recommends)."""


# --- Keys ---------------------------------------------------------------------------------------


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` may be a key name: not empty, no Unicode spaces, no ``+``, and (so that a
    note carrying it stays well formed) no control characters."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(c.isspace() or c < " " for c in name)
        and _encodable(name)
    )


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    _check_key_name(name)
    _check_public_key(public_key)
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key text ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
    encoded = base64.b64encode(bytes([ED25519]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, bytes, bytes]:
    """``(name, key ID, public key)`` from a verifier key; ValueError unless it is a well-formed
    Ed25519 verifier key whose key ID matches its name and key."""
    if not isinstance(text, str):
        raise ValueError("a verifier key is text")
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is <name>+<key ID>+<key>")
    name, hex_id, encoded = parts
    if not is_valid_key_name(name):
        raise ValueError("the verifier key's name is empty or has a space or control character")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise ValueError("the verifier key's key ID is not 8 hexadecimal digits")
    try:
        raw = _b64decode(encoded)
    except ValueError:
        raise ValueError("the verifier key's key is not valid base64") from None
    if not raw or raw[0] != ED25519:
        raise ValueError("the verifier key is not an Ed25519 key (type byte 0x01)")
    public_key = raw[1:]
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"the verifier key's Ed25519 key is not {PUBLIC_KEY_SIZE} bytes")
    stated = bytes.fromhex(hex_id)
    if stated != key_id(name, public_key):
        raise ValueError("the verifier key's key ID does not match its name and key")
    return name, stated, public_key


# --- Notes --------------------------------------------------------------------------------------


def sign(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``body`` (ending in a newline), a blank line, and the signature line
    ``— <name> <base64(key ID || Ed25519 signature of body)>``."""
    data = _check_body(body)
    return body + "\n" + _signature_line(data, name, private_key)


def add_signature(
    note: str,
    name: str,
    private_key: Ed25519PrivateKey,
    *,
    verifiers: Verifiers | None = None,
) -> str:
    """``note`` with one more signature (a cosignature) by ``private_key`` under ``name``.

    A signature already there under the same name and key ID is replaced, not repeated. With
    ``verifiers``, the note must first open with them (:func:`open_note`), so that a cosigner
    signs only what it has checked.
    """
    if verifiers is not None:
        open_note(note, verifiers)
    body, signatures = split_note(note)
    line = _signature_line(body.encode(), name, private_key)
    new_id = key_id(name, private_key.public_key().public_bytes_raw())
    kept = [s for s in signatures if (s.name, s.key_id) != (name, new_id)]
    if len(kept) + 1 > MAX_SIGNATURES:
        raise NoteError(f"a note may have at most {MAX_SIGNATURES} signatures")
    lines = "".join(_format_signature(s) for s in kept)
    signed = body + "\n" + lines + line
    if len(signed.encode()) > MAX_NOTE_BYTES:
        raise NoteError(f"the note would be larger than {MAX_NOTE_BYTES} bytes")
    return signed


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """The text and the signature lines of a note, checked for form but NOT verified.

    For reading the signers of a note or adding to it; never act on the text without
    :func:`open_note`. NoteError when the note is malformed.
    """
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError(f"the note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not valid UTF-8") from None
    elif not isinstance(note, str):
        raise NoteError("a note is text")
    if len(note) > MAX_NOTE_BYTES or len(_encode(note, "note")) > MAX_NOTE_BYTES:
        raise NoteError(f"the note is larger than {MAX_NOTE_BYTES} bytes")
    if _has_control_character(note):
        raise NoteError("the note has a control character other than newline")
    if not note.endswith("\n"):
        raise NoteError("the note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("the note has no signature lines after its last blank line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    return body, [_parse_signature_line(line) for line in lines]


def open_note(note: str | bytes, verifiers: Verifiers) -> tuple[str, list[str]]:
    """The text of a signed note and the names of the known keys whose signatures verified.

    Signatures by unknown keys (name and key ID not both known) are ignored. NoteError when the
    note is malformed, when a known key's signature does not verify, or when no known key
    signed it.
    """
    known = _known_keys(verifiers)
    body, signatures = split_note(note)
    data = body.encode()
    names: list[str] = []
    for signature in signatures:
        public_key = known.get((signature.name, signature.key_id))
        if public_key is None:
            continue
        try:
            public_key.verify(signature.signature, data)
        except InvalidSignature:
            raise NoteError(
                f"the signature by {signature.name}+{signature.key_id.hex()} does not verify"
            ) from None
        if signature.name not in names:
            names.append(signature.name)
    if not names:
        raise NoteError("no known key signed the note")
    return body, names


# --- Checkpoints --------------------------------------------------------------------------------


def checkpoint_body(origin: str, size: int, root: bytes, extensions: Iterable[str] = ()) -> str:
    """The note text of a checkpoint: ``origin``, ``size`` and base64(``root``), one a line,
    then the extension lines; ValueError when one of them cannot be written so."""
    if not isinstance(origin, str) or not origin:
        raise ValueError("a checkpoint's origin must be non-empty text")
    if _has_control_character(origin, allow_newline=False) or not _encodable(origin):
        raise ValueError("a checkpoint's origin must be one line without control characters")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"a checkpoint's tree size must be an integer from 0 to {MAX_TREE_SIZE}")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise ValueError(f"a checkpoint's root hash must be {HASH_SIZE} bytes")
    lines = [origin, str(size), base64.b64encode(root).decode("ascii")]
    for extension in extensions:
        if not isinstance(extension, str) or not extension:
            raise ValueError("a checkpoint's extension lines must be non-empty text")
        if _has_control_character(extension, allow_newline=False) or not _encodable(extension):
            raise ValueError("a checkpoint's extension line must be one line without controls")
        lines.append(extension)
    return "\n".join(lines) + "\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """The checkpoint a note text states; NoteError when it is not a well-formed checkpoint."""
    if not isinstance(body, str):
        raise NoteError("a checkpoint is text")
    if not _encodable(body) or _has_control_character(body):
        raise NoteError("the checkpoint has a control character other than newline")
    if not body.endswith("\n"):
        raise NoteError("the checkpoint does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has at least three lines: origin, tree size, root hash")
    if any(line == "" for line in lines):
        raise NoteError("the checkpoint has an empty line")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError("the checkpoint's tree size is not a decimal without leading zeros")
    # The digits are ASCII, so int() is exact; the length check keeps it cheap.
    if len(size_text) > len(str(MAX_TREE_SIZE)) or int(size_text) > MAX_TREE_SIZE:
        raise NoteError(f"the checkpoint's tree size is larger than {MAX_TREE_SIZE}")
    try:
        root = _b64decode(root_text)
    except ValueError:
        raise NoteError("the checkpoint's root hash is not valid base64") from None
    if len(root) != HASH_SIZE:
        raise NoteError(f"the checkpoint's root hash is not {HASH_SIZE} bytes")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# --- Helpers ------------------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    """Standard padded base64, in its one canonical spelling (ValueError otherwise)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64")
    return raw


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"the {what} is not valid UTF-8 text") from None


def _has_control_character(text: str, *, allow_newline: bool = True) -> bool:
    return any(c < " " and not (allow_newline and c == "\n") for c in text)


def _check_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise ValueError(
            "a key name must be non-empty, without spaces, plus signs or control characters"
        )


def _check_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")


def _check_body(body: str) -> bytes:
    if not isinstance(body, str):
        raise NoteError("a note's text is text")
    data = _encode(body, "note text")
    if not body.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if _has_control_character(body):
        raise NoteError("a note's text must have no control character other than newline")
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError(f"a note's text must be at most {MAX_NOTE_BYTES} bytes")
    return data


def _signature_line(data: bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError("notes are signed with an Ed25519 private key")
    public_key = private_key.public_key().public_bytes_raw()
    signature = NoteSignature(name, key_id(name, public_key), private_key.sign(data))
    return _format_signature(signature)


def _format_signature(signature: NoteSignature) -> str:
    encoded = base64.b64encode(signature.key_id + signature.signature).decode("ascii")
    return f"{SIGNATURE_PREFIX}{signature.name} {encoded}\n"


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a signature line does not start with an em dash and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise NoteError("a signature line has no valid key name")
    try:
        raw = _b64decode(encoded)
    except ValueError:
        raise NoteError(f"the signature by {name} is not valid base64") from None
    if len(raw) <= KEY_ID_SIZE:
        raise NoteError(f"the signature by {name} is shorter than a key ID and a signature")
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def _known_keys(verifiers: Verifiers) -> dict[tuple[str, bytes], Ed25519PublicKey]:
    """``{(name, key ID): public key}`` from either form of :data:`Verifiers`."""
    entries: list[tuple[str, bytes, bytes]] = []
    if isinstance(verifiers, Mapping):
        for (name, kid), public_key in verifiers.items():
            _check_key_name(name)
            if not isinstance(kid, bytes) or len(kid) != KEY_ID_SIZE:
                raise ValueError(f"a key ID is {KEY_ID_SIZE} bytes")
            _check_public_key(public_key)
            entries.append((name, kid, public_key))
    elif isinstance(verifiers, str | bytes):
        raise ValueError("verifiers are a mapping or a list of keys, not one string")
    else:
        for entry in verifiers:
            if isinstance(entry, str):
                entries.append(parse_verifier_key(entry))
            else:
                name, public_key = entry
                entries.append((name, key_id(name, public_key), public_key))
    known: dict[tuple[str, bytes], bytes] = {}
    for name, kid, public_key in entries:
        if known.setdefault((name, kid), public_key) != public_key:
            raise ValueError(f"two different keys are given for {name}+{kid.hex()}")
    return {k: Ed25519PublicKey.from_public_bytes(v) for k, v in known.items()}
