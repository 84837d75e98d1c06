"""Epoch keys: the keys that wrap subject keys for one shred epoch.

A subject's data key is wrapped (AES-256-GCM) under the key of the current *epoch*. When an
epoch ends, the subject keys still alive are re-wrapped under the next epoch's key and the old
epoch key is destroyed: every copy of an erased subject's wrapped key (database heap, WAL,
backups) can no longer be opened by anyone.

Epoch keys live behind one small interface, :class:`EpochKeyStore` (``base``, with the errors
and the blob layout both backends write), with two implementations:

- :class:`Pkcs11EpochKeys` (``pkcs11_token``): AES-256 keys generated inside a PKCS#11 token (an
  HSM, or SoftHSM2), persistent, sensitive and never extractable; wrapping and unwrapping run
  inside the token (``CKM_AES_GCM``); destruction is ``C_DestroyObject``, the token's own
  guarantee. How the process shares the PKCS#11 module (sessions, locks, forks) is
  ``pkcs11_library``.
- :class:`FileEpochKeys` (``files``): the embedded default, one file per epoch holding its key
  sealed under the service's key-encryption key; destruction zeroes and unlinks the file.

:func:`from_config` (``settings``) builds the configured store from plain settings. This
package imports no Flask and nothing above ``storage``; callers import from here.
"""

from storage.epoch_keys.base import (
    EpochKeyConfigError,
    EpochKeyError,
    EpochKeyExists,
    EpochKeyGone,
    EpochKeyStore,
    EpochKeyUnreadable,
    InvalidEpochId,
    WrapInvalid,
    validate_epoch_id,
)
from storage.epoch_keys.files import FileEpochKeys
from storage.epoch_keys.pkcs11_token import Pkcs11EpochKeys
from storage.epoch_keys.settings import from_config

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
