"""What both epoch key backends share: the interface, the errors, and the blob layout.

Every backend writes the same blob: ``version (1 byte) | nonce (12 bytes) | ciphertext | tag
(16 bytes)``, with the associated data ``lethe-epoch-wrap/v1|<epoch id>|<caller's aad>``, so a
blob is bound to its epoch and to whatever the caller binds (the subject id). The helpers that
build and take apart that layout live here so that the two backends cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, Self, runtime_checkable

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
BLOB_VERSION = b"\x01"
MIN_BLOB = len(BLOB_VERSION) + NONCE_BYTES + TAG_BYTES
LABEL_PREFIX = "lethe-epoch-"
EPOCH_ID = re.compile(r"[0-9A-Za-z_-]{1,40}")
_WRAP_AAD = b"lethe-epoch-wrap/v1|"


# --- errors -----------------------------------------------------------------------------------


class EpochKeyError(Exception):
    """Base of every error this package raises."""


class EpochKeyConfigError(EpochKeyError, RuntimeError):
    """A setting is missing or wrong; the message names it."""


class InvalidEpochId(EpochKeyError, ValueError):
    """An epoch id outside ``[0-9A-Za-z_-]{1,40}`` (it becomes a label or a file name)."""


class EpochKeyExists(EpochKeyError):
    """``create`` of an epoch whose key already exists."""


class EpochKeyGone(EpochKeyError):
    """The epoch's key does not exist (any more): destroyed, or never made."""


class EpochKeyUnreadable(EpochKeyError):
    """The epoch's key is there but cannot be opened (file backend: corrupt, or sealed under
    another key-encryption key)."""


class WrapInvalid(EpochKeyError):
    """A blob that does not authenticate under the epoch key with that associated data
    (tampered, truncated, wrong subject, wrong epoch). ``index`` is the failing item's position
    in a batch (``None`` for single calls)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


# --- the interface ----------------------------------------------------------------------------


@runtime_checkable
class EpochKeyStore(Protocol):
    """Where epoch keys live. ``aad`` is the caller's associated data (the subject id); the
    store adds the epoch id to it. Blobs carry their random 96-bit nonce."""

    #: One plain sentence: what ``destroy`` guarantees with this backend (README, receipts).
    guarantee: str

    def create(self, epoch_id: str) -> None:
        """Make a new random AES-256 key for the epoch; ``EpochKeyExists`` if it has one."""
        ...

    def exists(self, epoch_id: str) -> bool: ...

    def wrap(self, epoch_id: str, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, epoch_id: str, blob: bytes, aad: bytes) -> bytes:
        """``EpochKeyGone`` when the epoch key is gone, ``WrapInvalid`` on a bad blob."""
        ...

    def wrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        """``items`` are ``(plaintext, aad)``; one key look-up for the whole batch."""
        ...

    def unwrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        """``items`` are ``(blob, aad)``; the first bad blob raises ``WrapInvalid(index=i)``."""
        ...

    def destroy(self, epoch_id: str) -> bool:
        """Destroy the epoch key; True if it existed (so reruns are idempotent)."""
        ...

    def list_epochs(self) -> list[str]:
        """Epoch ids whose keys exist, sorted."""
        ...

    def close(self) -> None:
        """Release sessions or handles (the store may be used again afterwards)."""
        ...


# --- shared helpers ---------------------------------------------------------------------------


def validate_epoch_id(epoch_id: str) -> str:
    if not isinstance(epoch_id, str) or not EPOCH_ID.fullmatch(epoch_id):
        raise InvalidEpochId(f"epoch id must match [0-9A-Za-z_-]{{1,40}}: {epoch_id!r}")
    return epoch_id


def as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def wrap_aad(epoch_id: str, aad: bytes) -> bytes:
    # The epoch id cannot contain "|", so the encoding is unambiguous.
    return _WRAP_AAD + epoch_id.encode("ascii") + b"|" + as_bytes(aad, "aad")


def split_blob(blob: Any, index: int | None) -> tuple[bytes, bytes]:
    """(nonce, ciphertext+tag), or WrapInvalid for anything that cannot be one of our blobs."""
    blob = as_bytes(blob, "blob")
    if len(blob) < MIN_BLOB or blob[:1] != BLOB_VERSION:
        raise WrapInvalid("not an epoch-wrapped blob (length or version)", index)
    return blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]


class ClosedOnExit:
    """``with store:`` closes the store at the end of the block (both backends)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
