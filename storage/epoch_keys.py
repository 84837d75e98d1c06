"""Epoch keys: the keys that wrap subject keys for one shred epoch.

A subject's data key is wrapped (AES-256-GCM) under the key of the current *epoch*. When an
epoch ends, the subject keys still alive are re-wrapped under the next epoch's key and the old
epoch key is destroyed: every copy of an erased subject's wrapped key (database heap, WAL,
backups) can no longer be opened by anyone.

Epoch keys live behind one small interface, :class:`EpochKeyStore`, with two implementations:

- :class:`Pkcs11EpochKeys`: AES-256 keys generated inside a PKCS#11 token (an HSM, or SoftHSM2),
  persistent, sensitive and never extractable; wrapping and unwrapping run inside the token
  (``CKM_AES_GCM``); destruction is ``C_DestroyObject``, the token's own guarantee.
- :class:`FileEpochKeys`: the embedded default, one file per epoch holding its key sealed under
  the service's key-encryption key; destruction zeroes and unlinks the file.

Both write the same blob: ``version (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes)``,
with the associated data ``lethe-epoch-wrap/v1|<epoch id>|<caller's aad>``, so a blob is bound
to its epoch and to whatever the caller binds (the subject id).

:func:`from_config` builds the configured store from plain settings. This module imports no
Flask and nothing above ``storage``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "EpochKeyConfigError",
    "EpochKeyError",
    "EpochKeyExists",
    "EpochKeyGone",
    "EpochKeyStore",
    "EpochKeyUnreadable",
    "FileEpochKeys",
    "InvalidEpochId",
    "Pkcs11EpochKeys",
    "WrapInvalid",
    "from_config",
    "validate_epoch_id",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
BLOB_VERSION = b"\x01"
MIN_BLOB = len(BLOB_VERSION) + NONCE_BYTES + TAG_BYTES
LABEL_PREFIX = "lethe-epoch-"
_EPOCH_ID = re.compile(r"[0-9A-Za-z_-]{1,40}")
_WRAP_AAD = b"lethe-epoch-wrap/v1|"


# --- errors -----------------------------------------------------------------------------------


class EpochKeyError(Exception):
    """Base of every error this module raises."""


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
    if not isinstance(epoch_id, str) or not _EPOCH_ID.fullmatch(epoch_id):
        raise InvalidEpochId(f"epoch id must match [0-9A-Za-z_-]{{1,40}}: {epoch_id!r}")
    return epoch_id


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


def _full_aad(epoch_id: str, aad: bytes) -> bytes:
    # The epoch id cannot contain "|", so the encoding is unambiguous.
    return _WRAP_AAD + epoch_id.encode("ascii") + b"|" + _as_bytes(aad, "aad")


def _split_blob(blob: Any, index: int | None) -> tuple[bytes, bytes]:
    """(nonce, ciphertext+tag), or WrapInvalid for anything that cannot be one of our blobs."""
    blob = _as_bytes(blob, "blob")
    if len(blob) < MIN_BLOB or blob[:1] != BLOB_VERSION:
        raise WrapInvalid("not an epoch-wrapped blob (length or version)", index)
    return blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]


T = TypeVar("T")


# --- PKCS#11 ----------------------------------------------------------------------------------


class _Library:
    """One PKCS#11 module loaded in this process, shared by every ``Pkcs11EpochKeys`` on it.

    python-pkcs11 calls ``C_Initialize(NULL)``, which tells the module that the application is
    single-threaded (SoftHSM2 then turns its own mutexes off), and python-pkcs11 sessions are
    not thread-safe either: so every call into the module goes through ``lock``. The login
    state of a token is per process (PKCS#11), so there is one logged-in session per token,
    kept here. After a fork the child drops the parent's sessions (never closing them: on a
    networked HSM that would close the parent's), finalises and initialises the module again,
    and opens its own session on first use.
    """

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.RLock()
        self.users = 0
        self._pid = os.getpid()
        self._lib: Any = None
        self._sessions: dict[str, Any] = {}

    def after_fork_in_child(self) -> None:
        # A lock held by another thread at fork time would stay held for ever in the child.
        self.lock = threading.RLock()

    def _check_fork(self) -> None:
        if self._pid == os.getpid():
            return
        import pkcs11

        self._sessions.clear()  # the parent's: not ours to close
        self._pid = os.getpid()
        if self._lib is not None:
            # PKCS#11: a child must initialise the library again before using it.
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()

    def _module(self) -> Any:
        import pkcs11

        self._check_fork()
        if self._lib is None or not self._lib.initialized:
            try:
                self._lib = pkcs11.lib(self.path)  # C_Initialize when not initialised
            except pkcs11.PKCS11Error as exc:
                raise EpochKeyConfigError(
                    f"PKCS11_MODULE {self.path!r} could not be loaded: {exc}"
                ) from exc
        return self._lib

    def session(self, token_label: str, pin: str) -> Any:
        """The token's logged-in read-write session (the caller holds ``lock``)."""
        import pkcs11

        lib = self._module()
        session = self._sessions.get(token_label)
        if session is not None:
            return session
        try:
            token = lib.get_token(token_label=token_label)
        except pkcs11.NoSuchToken as exc:
            raise EpochKeyConfigError(
                f"PKCS11_TOKEN_LABEL: no token labelled {token_label!r} in {self.path}"
            ) from exc
        except pkcs11.MultipleTokensReturned as exc:
            raise EpochKeyConfigError(
                f"PKCS11_TOKEN_LABEL: several tokens labelled {token_label!r} in {self.path}"
            ) from exc
        try:
            session = token.open(rw=True, user_pin=pin)
        except pkcs11.UserAlreadyLoggedIn:
            # Logged in already in this process (login is per process): share that login.
            session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as exc:
            raise EpochKeyConfigError(f"PKCS11_PIN was refused by token {token_label!r}") from exc
        except pkcs11.PinLocked as exc:
            raise EpochKeyConfigError(f"the PIN of token {token_label!r} is locked") from exc
        self._sessions[token_label] = session
        return session

    def drop_session(self, token_label: str) -> None:
        import pkcs11

        session = self._sessions.pop(token_label, None)
        if session is not None and self._pid == os.getpid():
            with contextlib.suppress(pkcs11.PKCS11Error):
                session.close()

    def release(self) -> None:
        """One user fewer; the last one closes the sessions and finalises the module, so that
        the next use initialises it again (and reads the module's configuration again)."""
        import pkcs11

        self.users -= 1
        if self.users > 0:
            return
        self.users = 0
        if self._pid != os.getpid():
            self._check_fork()
            return
        for label in list(self._sessions):
            self.drop_session(label)
        if self._lib is not None and self._lib.initialized:
            with contextlib.suppress(pkcs11.PKCS11Error):
                self._lib.finalize()


_LIBRARIES: dict[str, _Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def _library(path: str) -> _Library:
    with _LIBRARIES_LOCK:
        lib = _LIBRARIES.get(path)
        if lib is None:
            lib = _LIBRARIES[path] = _Library(path)
        return lib


def _after_fork_in_child() -> None:
    global _LIBRARIES_LOCK
    _LIBRARIES_LOCK = threading.Lock()
    for lib in _LIBRARIES.values():
        lib.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Pkcs11EpochKeys:
    """Epoch keys inside a PKCS#11 token (an HSM; SoftHSM2 in development and tests).

    Each epoch key is an AES-256 secret key generated by the token (``C_GenerateKey``), a token
    object (persistent) labelled ``lethe-epoch-<epoch id>``, private, sensitive, never
    extractable, not copyable, usable only to encrypt and decrypt. Wrapping is ``CKM_AES_GCM``
    inside the token with a random 96-bit nonce chosen here. ``destroy`` is
    ``C_DestroyObject``.

    Sessions open lazily, one per token per process, shared by every instance; calls are
    serialised by a per-module lock (see ``_Library``); a forked child re-initialises the
    module and opens its own session. Keys are found by label on every call (a batch looks its
    key up once), so a key destroyed by another process is gone here too.
    """

    guarantee = (
        "Destroying an epoch deletes its key inside the PKCS#11 token, where it was generated "
        "and which it never left (sensitive, non-extractable, non-copyable), so every key "
        "wrapped under it is unreadable as far as the token's own deletion can be trusted: a "
        "hardware HSM's guarantee, or with SoftHSM2 (files encrypted under the PIN) only while "
        "the token directory is kept out of every backup."
    )

    def __init__(self, module_path: str, token_label: str, pin: str):
        if not module_path or not os.path.isfile(module_path):
            raise EpochKeyConfigError(f"PKCS11_MODULE: no PKCS#11 module at {module_path!r}")
        if not token_label:
            raise EpochKeyConfigError("PKCS11_TOKEN_LABEL is empty")
        if not pin:
            raise EpochKeyConfigError("PKCS11_PIN is empty")
        self.module_path = module_path
        self.token_label = token_label
        self._pin = pin
        self._library = _library(module_path)
        with self._library.lock:
            self._library.users += 1
        self._closed = False

    def __repr__(self) -> str:
        return f"Pkcs11EpochKeys({self.module_path!r}, token_label={self.token_label!r})"

    def __enter__(self) -> Pkcs11EpochKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._library.lock:
            if not self._closed:
                self._closed = True
                self._library.release()

    # -- plumbing

    def _call(self, fn: Callable[[Any], T], retry: bool = True) -> T:
        """Run ``fn(session)`` holding the module lock; a lost session is reopened (and, for
        operations that may run twice, ``fn`` is retried once)."""
        import pkcs11

        lost = (
            pkcs11.SessionHandleInvalid,
            pkcs11.SessionClosed,
            pkcs11.UserNotLoggedIn,
            pkcs11.DeviceRemoved,
            pkcs11.TokenNotPresent,
        )
        with self._library.lock:
            if self._closed:  # used again after close(): count it as a user again
                self._closed = False
                self._library.users += 1
            for attempt in (1, 2):
                session = self._library.session(self.token_label, self._pin)
                try:
                    return fn(session)
                except lost:
                    self._library.drop_session(self.token_label)
                    if attempt == 2 or not retry:
                        raise
        raise AssertionError("unreachable")

    @staticmethod
    def _label(epoch_id: str) -> str:
        return LABEL_PREFIX + validate_epoch_id(epoch_id)

    def _find_all(self, session: Any, epoch_id: str) -> list[Any]:
        from pkcs11 import Attribute, ObjectClass

        return list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: self._label(epoch_id)}
            )
        )

    def _key(self, session: Any, epoch_id: str) -> Any:
        """The epoch's key object. Should two processes have raced ``create``, the one with
        the lowest CKA_ID is the epoch key (every process picks the same one)."""
        from pkcs11 import Attribute

        keys = self._find_all(session, epoch_id)
        if not keys:
            raise EpochKeyGone(epoch_id)
        if len(keys) == 1:
            return keys[0]
        return min(keys, key=lambda k: bytes(k[Attribute.ID]))

    # -- the interface

    def create(self, epoch_id: str) -> None:
        from pkcs11 import Attribute, KeyType, MechanismFlag

        label = self._label(epoch_id)

        def run(session: Any) -> None:
            if self._find_all(session, epoch_id):
                raise EpochKeyExists(epoch_id)
            key_id = secrets.token_bytes(16)
            key = session.generate_key(
                KeyType.AES,
                KEY_BYTES * 8,
                id=key_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.COPYABLE: False,
                    Attribute.MODIFIABLE: False,
                    Attribute.DESTROYABLE: True,
                },
            )
            # Another process may have created the same epoch meanwhile: the lowest id wins.
            found = self._find_all(session, epoch_id)
            if len(found) > 1 and min(bytes(k[Attribute.ID]) for k in found) != key_id:
                key.destroy()
                raise EpochKeyExists(epoch_id)

        self._call(run, retry=False)

    def exists(self, epoch_id: str) -> bool:
        validate_epoch_id(epoch_id)
        return self._call(lambda s: bool(self._find_all(s, epoch_id)))

    def wrap(self, epoch_id: str, plaintext: bytes, aad: bytes) -> bytes:
        return self.wrap_many(epoch_id, [(plaintext, aad)])[0]

    def unwrap(self, epoch_id: str, blob: bytes, aad: bytes) -> bytes:
        try:
            return self.unwrap_many(epoch_id, [(blob, aad)])[0]
        except WrapInvalid as exc:
            raise WrapInvalid(str(exc)) from None

    def wrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        import pkcs11
        from pkcs11 import GCMParams, Mechanism

        validate_epoch_id(epoch_id)
        prepared = [(_as_bytes(p, "plaintext"), _full_aad(epoch_id, aad)) for p, aad in items]

        def run(session: Any) -> list[bytes]:
            key = self._key(session, epoch_id)
            out = []
            try:
                for plaintext, full_aad in prepared:
                    nonce = secrets.token_bytes(NONCE_BYTES)
                    sealed = key.encrypt(
                        plaintext,
                        mechanism=Mechanism.AES_GCM,
                        mechanism_param=GCMParams(nonce, full_aad, TAG_BYTES * 8),
                        buffer_size=len(plaintext) + TAG_BYTES,
                    )
                    out.append(BLOB_VERSION + nonce + sealed)
            except (pkcs11.KeyHandleInvalid, pkcs11.ObjectHandleInvalid) as exc:
                raise EpochKeyGone(epoch_id) from exc  # destroyed under our feet
            return out

        return self._call(run)

    def unwrap_many(self, epoch_id: str, items: list[tuple[bytes, bytes]]) -> list[bytes]:
        import pkcs11
        from pkcs11 import GCMParams, Mechanism

        validate_epoch_id(epoch_id)
        prepared = [
            (*_split_blob(blob, i), _full_aad(epoch_id, aad)) for i, (blob, aad) in enumerate(items)
        ]
        # What a token answers to a tag that does not verify: CKR_ENCRYPTED_DATA_INVALID by
        # the standard, CKR_GENERAL_ERROR from SoftHSM2 2.6.
        bad = (
            pkcs11.EncryptedDataInvalid,
            pkcs11.EncryptedDataLenRange,
            pkcs11.GeneralError,
            pkcs11.FunctionFailed,
            pkcs11.DataInvalid,
            pkcs11.DataLenRange,
        )

        def run(session: Any) -> list[bytes]:
            key = self._key(session, epoch_id)
            out = []
            for i, (nonce, sealed, full_aad) in enumerate(prepared):
                try:
                    out.append(
                        key.decrypt(
                            sealed,
                            mechanism=Mechanism.AES_GCM,
                            mechanism_param=GCMParams(nonce, full_aad, TAG_BYTES * 8),
                            buffer_size=len(sealed),
                        )
                    )
                except (pkcs11.KeyHandleInvalid, pkcs11.ObjectHandleInvalid) as exc:
                    raise EpochKeyGone(epoch_id) from exc
                except bad as exc:
                    raise WrapInvalid(
                        f"blob does not authenticate under epoch {epoch_id}", i
                    ) from exc
            return out

        return self._call(run)

    def destroy(self, epoch_id: str) -> bool:
        import pkcs11

        validate_epoch_id(epoch_id)

        def run(session: Any) -> bool:
            keys = self._find_all(session, epoch_id)
            for key in keys:  # normally one; every duplicate from a create race goes too
                with contextlib.suppress(pkcs11.ObjectHandleInvalid, pkcs11.KeyHandleInvalid):
                    key.destroy()
            return bool(keys)

        return self._call(run)

    def list_epochs(self) -> list[str]:
        from pkcs11 import Attribute, ObjectClass

        def run(session: Any) -> list[str]:
            ids = set()
            for key in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
                label = key.label or ""
                epoch_id = label[len(LABEL_PREFIX) :]
                if label.startswith(LABEL_PREFIX) and _EPOCH_ID.fullmatch(epoch_id):
                    ids.add(epoch_id)
            return sorted(ids)

        return self._call(run)


# --- files ------------------------------------------------------------------------------------


_FILE_MAGIC = b"LEK1"  # Lethe epoch key, format 1
_FILE_AAD = b"lethe-epoch-key/v1|"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileEpochKeys:
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
        sealing_key = _as_bytes(sealing_key, "sealing_key")
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

    def __enter__(self) -> FileEpochKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            (_as_bytes(p, "plaintext"), _full_aad(validate_epoch_id(epoch_id), aad))
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
            (*_split_blob(blob, i), _full_aad(epoch_id, aad)) for i, (blob, aad) in enumerate(items)
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
        return sorted(i for i in ids if _EPOCH_ID.fullmatch(i))


# --- configuration ----------------------------------------------------------------------------


def _setting(cfg: Mapping[str, Any], name: str, why: str) -> Any:
    value = cfg.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EpochKeyConfigError(f"{name} is not set (environment: LETHE_{name}); {why}")
    return value


def _key_from_config(raw: Any, name: str) -> bytes:
    if isinstance(raw, bytes | bytearray):
        key = bytes(raw)
    else:
        text = str(raw).strip()
        try:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise EpochKeyConfigError(f"{name} is not base64url") from exc
    if len(key) != KEY_BYTES:
        raise EpochKeyConfigError(f"{name} must be 32 bytes, base64url-encoded")
    return key


def from_config(cfg: Mapping[str, Any]) -> EpochKeyStore:
    """The configured epoch key store, from plain settings (a Flask config is such a dict):

    - ``EPOCH_KEY_BACKEND``: ``file`` (default) or ``pkcs11``;
    - file: ``EPOCH_KEY_DIR`` and ``KEY_ENCRYPTION_KEY`` (32 bytes, base64url) to seal keys;
    - pkcs11: ``PKCS11_MODULE`` (path of the module), ``PKCS11_TOKEN_LABEL``, ``PKCS11_PIN``.
    """
    backend = str(cfg.get("EPOCH_KEY_BACKEND") or "file").strip().lower()
    if backend == "file":
        why = "the file epoch key backend needs it"
        directory = _setting(cfg, "EPOCH_KEY_DIR", why)
        kek = _key_from_config(_setting(cfg, "KEY_ENCRYPTION_KEY", why), "KEY_ENCRYPTION_KEY")
        return FileEpochKeys(directory, kek)
    if backend == "pkcs11":
        why = "EPOCH_KEY_BACKEND=pkcs11 needs it"
        return Pkcs11EpochKeys(
            str(_setting(cfg, "PKCS11_MODULE", why)),
            str(_setting(cfg, "PKCS11_TOKEN_LABEL", why)),
            str(_setting(cfg, "PKCS11_PIN", why)),
        )
    raise EpochKeyConfigError(f"EPOCH_KEY_BACKEND must be 'file' or 'pkcs11', not {backend!r}")
