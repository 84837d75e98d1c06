"""The PKCS#11 module as this process shares it: one loaded module per path, one logged-in
session per token, one lock around every call, and what a fork must undo.

Kept apart from :mod:`storage.epoch_keys.pkcs11_token` because these rules are the module's and
the process's, not an epoch key's: every ``Pkcs11EpochKeys`` on the same module goes through the
same ``Library``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from storage.epoch_keys.base import EpochKeyConfigError


class Library:
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


_LIBRARIES: dict[str, Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def shared_library(path: str) -> Library:
    """The one ``Library`` of this module path: stores on the same module share its lock and
    its logged-in sessions, since PKCS#11 login is per process."""
    with _LIBRARIES_LOCK:
        lib = _LIBRARIES.get(path)
        if lib is None:
            lib = _LIBRARIES[path] = Library(path)
        return lib


def _after_fork_in_child() -> None:
    global _LIBRARIES_LOCK
    _LIBRARIES_LOCK = threading.Lock()
    for lib in _LIBRARIES.values():
        lib.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
