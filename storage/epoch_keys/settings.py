"""The configured epoch key store, built from plain settings (a Flask config is such a dict),
so that this package needs no Flask."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from storage.epoch_keys.base import KEY_BYTES, EpochKeyConfigError, EpochKeyStore
from storage.epoch_keys.files import FileEpochKeys
from storage.epoch_keys.pkcs11_token import Pkcs11EpochKeys


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
