"""Epoch keys as sealed files: the embedded default, for when there is no PKCS#11 token."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.epoch_keys.base import (
    BLOB_VERSION,
    EPOCH_ID,
    KEY_BYTES,
    NONCE_BYTES,
    ClosedOnExit,
    EpochKeyConfigError,
    EpochKeyExists,
    EpochKeyGone,
    EpochKeyUnreadable,
    WrapInvalid,
    as_bytes,
    split_blob,
    validate_epoch_id,
    wrap_aad,
)

_FILE_MAGIC = b"LEK1"  # Lethe epoch key, format 1
_FILE_AAD = b"lethe-epoch-key/v1|"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileEpochKeys(ClosedOnExit):
    """Epoch keys as files: ``<directory>/<epoch id>.key`` (0600, directory 0700), each holding
    the epoch's random AES-256 key sealed with AES-256-GCM under a key derived (HKDF-SHA256)
    from ``sealing_key`` (the service's key-encryption key), the epoch id as associated data.

    Written atomically (temporary file, fsync, hard link to the final name — which, unlike a
    rename, never replaces an existing epoch's key — fsync of the directory). Destroyed by
    overwriting the file with zeros, fsync, unlink, fsync of the directory. No key is cached
    between calls: once one process destroys an epoch, no other can use it; a batch reads the
    key once. Stateless otherwise, so safe across threads and forks.
    """

    guarantee = (
        "Destroying an epoch overwrites its key file with zeros, syncs and unlinks it, which "
        "makes every key wrapped under it unreadable only if no other copy of that file "
        "survives (a journaling or copy-on-write filesystem, a snapshot or an SSD may keep old "
        "blocks, which the key-encryption key would open), so the guarantee holds only while "
        "the operator keeps the epoch key directory out of every backup, snapshot and replica."
    )

    def __init__(self, directory: str | os.PathLike[str], sealing_key: bytes):
        sealing_key = as_bytes(sealing_key, "sealing_key")
        if len(sealing_key) != KEY_BYTES:
            raise EpochKeyConfigError("the sealing key (KEY_ENCRYPTION_KEY) must be 32 bytes")
        self.directory = Path(directory)
        self._seal = AESGCM(
            HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_BYTES,
                salt=None,
                info=b"lethe epoch-key file sealing v1",
            ).derive(sealing_key)
        )

    def __repr__(self) -> str:
        return f"FileEpochKeys({str(self.directory)!r})"

    def close(self) -> None:
        """Nothing to release."""

    def path(self, epoch_id: str) -> Path:
        return self.directory / f"{validate_epoch_id(epoch_id)}.key"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    @staticmethod
    def _aad(epoch_id: str) -> bytes:
        return _FILE_AAD + epoch_id.encode("ascii")

    def _load(self, epoch_id: str) -> bytes:
        """The epoch's raw key (EpochKeyGone when its file is not there)."""
        path = self.path(epoch_id)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise EpochKeyGone(epoch_id) from None
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        head, nonce, sealed = data[:4], data[4 : 4 + NONCE_BYTES], data[4 + NONCE_BYTES :]
        if head != _FILE_MAGIC:
            if not data.strip(b"\x00"):  # zeroed by a destroy that has not unlinked yet
                raise EpochKeyGone(epoch_id)
            raise EpochKeyUnreadable(f"{path} is not an epoch key file")
        try:
            return self._seal.decrypt(nonce, sealed, self._aad(epoch_id))
        except InvalidTag:
            raise EpochKeyUnreadable(
                f"{path} does not open with this KEY_ENCRYPTION_KEY (or is corrupt)"
            ) from None

    def create(self, epoch_id: str) -> None:
        final = self.path(epoch_id)
        self._ensure_directory()
        if final.exists():
            raise EpochKeyExists(epoch_id)
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = secrets.token_bytes(NONCE_BYTES)
        data = _FILE_MAGIC + nonce + self._seal.encrypt(nonce, key, self._aad(epoch_id))
        tmp = self.directory / f".{epoch_id}.{secrets.token_hex(8)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, final)  # atomic, and never replaces an existing key
            except FileExistsError:
                raise EpochKeyExists(epoch_id) from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # A filesystem without hard links: rename (a race with another create of the
                # same epoch could replace its key; the check above makes that unlikely).
                if final.exists():
                    raise EpochKeyExists(epoch_id) from None
                os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(self.directory)

    def exists(self, epoch_id: str) -> bool:
        return self.path(epoch_id).exists()

    def wrap(self, epoch_id: str, plaintext: bytes, aad: bytes) -> bytes:
        return self.wrap_many(epoch_id, [(plaintext, aad)])[0]

    def unwrap(self, epoch_id: str, blob: bytes, aad: bytes) -> bytes:
        try:
            return self.unwrap_many(epoch_id, [(blob, aad)])[0]
        except WrapInvalid as exc:
            raise WrapInvalid(str(exc)) from None

    def wrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        prepared = [
            (as_bytes(p, "plaintext"), wrap_aad(validate_epoch_id(epoch_id), aad))
            for p, aad in items
        ]
        aead = AESGCM(self._load(epoch_id))
        out = []
        for plaintext, full_aad in prepared:
            nonce = secrets.token_bytes(NONCE_BYTES)
            out.append(BLOB_VERSION + nonce + aead.encrypt(nonce, plaintext, full_aad))
        return out

    def unwrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        validate_epoch_id(epoch_id)
        prepared = [
            (*split_blob(blob, i), wrap_aad(epoch_id, aad)) for i, (blob, aad) in enumerate(items)
        ]
        aead = AESGCM(self._load(epoch_id))
        out = []
        for i, (nonce, sealed, full_aad) in enumerate(prepared):
            try:
                out.append(aead.decrypt(nonce, sealed, full_aad))
            except InvalidTag:
                raise WrapInvalid(f"blob does not authenticate under epoch {epoch_id}", i) from None
        return out

    def destroy(self, epoch_id: str) -> bool:
        path = self.path(epoch_id)
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return False
        try:
            size = os.fstat(fd).st_size
            os.pwrite(fd, b"\x00" * size, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False  # another destroy got there first
        _fsync_dir(self.directory)
        return True

    def list_epochs(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        ids = (n[: -len(".key")] for n in names if n.endswith(".key"))
        return sorted(i for i in ids if EPOCH_ID.fullmatch(i))
