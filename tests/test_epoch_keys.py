"""Epoch keys (storage/epoch_keys/): both backends behind one interface.

Every interface test runs against the file backend and against a PKCS#11 token: a throwaway
SoftHSM2 token made in the test's tmp_path. Without SoftHSM2 (Debian package ``softhsm2``)
the PKCS#11 cases skip with a reason, or fail when ``LETHE_REQUIRE_SOFTHSM=1`` (CI).
"""

import base64
import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from storage import epoch_keys
from storage.epoch_keys import (
    EpochKeyConfigError,
    EpochKeyExists,
    EpochKeyGone,
    EpochKeyStore,
    EpochKeyUnreadable,
    FileEpochKeys,
    InvalidEpochId,
    Pkcs11EpochKeys,
    WrapInvalid,
    from_config,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture(params=["file", "pkcs11"])
def make_store(request, tmp_path, kek):
    """Makes stores of the backend under test, all on the same keys (as separate instances,
    the way another worker would); closes them all afterwards."""
    made = []
    if request.param == "pkcs11":
        hsm = request.getfixturevalue("softhsm")

        def make():
            made.append(Pkcs11EpochKeys(hsm.module, hsm.label, hsm.pin))
            return made[-1]
    else:

        def make():
            made.append(FileEpochKeys(tmp_path / "epoch-keys", kek))
            return made[-1]

    make.backend = request.param
    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


def _items(n: int, prefix: str = "subject") -> list[tuple[bytes, bytes]]:
    return [(os.urandom(32), f"{prefix}-{i}".encode()) for i in range(n)]


def _token_objects(store: Pkcs11EpochKeys, label: str) -> list:
    from pkcs11 import Attribute

    return store._call(lambda s: list(s.get_objects({Attribute.LABEL: label})))


# --- the interface, on both backends ----------------------------------------------------------


def test_implements_the_interface(store):
    assert isinstance(store, EpochKeyStore)
    assert isinstance(store.guarantee, str) and "destroy" in store.guarantee.lower()


def test_round_trip(store):
    store.create("2025-06")
    assert store.exists("2025-06")
    key = os.urandom(32)
    blob = store.wrap("2025-06", key, b"subject-1")
    assert len(blob) == 1 + 12 + 32 + 16  # version, nonce, ciphertext, tag
    assert key not in blob
    assert store.unwrap("2025-06", blob, b"subject-1") == key
    # A random nonce each time: wrapping the same key twice gives different blobs.
    again = store.wrap("2025-06", key, b"subject-1")
    assert again != blob and store.unwrap("2025-06", again, b"subject-1") == key


def test_batch_round_trip_of_1000(store):
    store.create("e1")
    items = _items(1000)
    blobs = store.wrap_many("e1", items)
    assert len(blobs) == 1000 and len(set(blobs)) == 1000
    back = store.unwrap_many("e1", [(b, aad) for b, (_, aad) in zip(blobs, items, strict=True)])
    assert back == [p for p, _ in items]
    # Single and batch forms read each other's blobs.
    assert store.unwrap("e1", blobs[7], items[7][1]) == items[7][0]
    assert store.unwrap_many("e1", []) == [] and store.wrap_many("e1", []) == []


def test_aad_mismatch_is_refused(store):
    store.create("e1")
    store.create("e2")
    blob = store.wrap("e1", b"k" * 32, b"subject-1")
    with pytest.raises(WrapInvalid):
        store.unwrap("e1", blob, b"subject-2")
    with pytest.raises(WrapInvalid):
        store.unwrap("e1", blob, b"")
    # Bound to its epoch as well: another live epoch does not open it.
    with pytest.raises(WrapInvalid):
        store.unwrap("e2", blob, b"subject-1")


def test_tampered_blob_is_refused(store):
    store.create("e1")
    blob = store.wrap("e1", b"k" * 32, b"subject-1")
    for position in (0, 1, 12, 13, 40, len(blob) - 1):  # version, nonce, ciphertext, tag
        bad = bytearray(blob)
        bad[position] ^= 0x01
        with pytest.raises(WrapInvalid):
            store.unwrap("e1", bytes(bad), b"subject-1")
    for bad in (b"", blob[:28], blob[:-1], blob + b"\x00"):
        with pytest.raises(WrapInvalid):
            store.unwrap("e1", bad, b"subject-1")
    # The store still works after refusals (no half-finished token operation left behind).
    assert store.unwrap("e1", blob, b"subject-1") == b"k" * 32


def test_a_bad_blob_in_a_batch_names_its_index(store):
    store.create("e1")
    items = _items(10)
    pairs = list(zip(store.wrap_many("e1", items), [aad for _, aad in items], strict=True))
    pairs[6] = (pairs[6][0][:-1] + bytes([pairs[6][0][-1] ^ 1]), pairs[6][1])
    with pytest.raises(WrapInvalid) as caught:
        store.unwrap_many("e1", pairs)
    assert caught.value.index == 6


def test_destroy_makes_the_key_gone(store, make_store):
    store.create("e1")
    blob = store.wrap("e1", b"k" * 32, b"subject-1")
    assert store.destroy("e1") is True
    with pytest.raises(EpochKeyGone):
        store.unwrap("e1", blob, b"subject-1")
    with pytest.raises(EpochKeyGone):
        store.unwrap_many("e1", [(blob, b"subject-1")])
    with pytest.raises(EpochKeyGone):
        store.wrap("e1", b"k" * 32, b"subject-1")
    assert not store.exists("e1")
    assert "e1" not in store.list_epochs()
    assert store.destroy("e1") is False
    # Gone for another instance (another worker) too.
    with pytest.raises(EpochKeyGone):
        make_store().unwrap("e1", blob, b"subject-1")
    if make_store.backend == "file":
        assert not store.path("e1").exists()
        assert os.listdir(store.directory) == []
    else:
        assert _token_objects(store, "lethe-epoch-e1") == []


def test_never_created_is_gone(store):
    assert not store.exists("nope")
    assert store.destroy("nope") is False
    with pytest.raises(EpochKeyGone):
        store.wrap("nope", b"k" * 32, b"s")
    with pytest.raises(EpochKeyGone):
        store.unwrap("nope", b"\x01" + b"\x00" * 60, b"s")


def test_create_refuses_an_existing_epoch(store):
    store.create("e1")
    blob = store.wrap("e1", b"k" * 32, b"s")
    with pytest.raises(EpochKeyExists):
        store.create("e1")
    assert store.unwrap("e1", blob, b"s") == b"k" * 32  # the key was not replaced
    # After destroy, the id may be used again, with a new key.
    store.destroy("e1")
    store.create("e1")
    with pytest.raises(WrapInvalid):
        store.unwrap("e1", blob, b"s")


def test_two_epochs_alive_at_once_are_independent(store):
    store.create("2025-05")
    store.create("2025-06")
    assert store.list_epochs() == ["2025-05", "2025-06"]
    old = store.wrap("2025-05", b"a" * 32, b"s")
    new = store.wrap("2025-06", b"b" * 32, b"s")
    # The end of an epoch: re-wrap under the new one, then destroy the old.
    rewrapped = store.wrap("2025-06", store.unwrap("2025-05", old, b"s"), b"s")
    assert store.destroy("2025-05")
    assert store.list_epochs() == ["2025-06"]
    with pytest.raises(EpochKeyGone):
        store.unwrap("2025-05", old, b"s")
    assert store.unwrap("2025-06", new, b"s") == b"b" * 32
    assert store.unwrap("2025-06", rewrapped, b"s") == b"a" * 32


BAD_IDS = ["", "a" * 41, "../x", "a/b", "a b", "e1\n", "é", "a.key", "a|b", "lethe*", None, 5]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_epoch_ids_are_refused(store, bad):
    calls = [
        lambda: store.create(bad),
        lambda: store.exists(bad),
        lambda: store.wrap(bad, b"k", b"s"),
        lambda: store.unwrap(bad, b"\x01" + b"\x00" * 60, b"s"),
        lambda: store.wrap_many(bad, [(b"k", b"s")]),
        lambda: store.unwrap_many(bad, [(b"\x01" + b"\x00" * 60, b"s")]),
        lambda: store.destroy(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidEpochId):
            call()
    assert store.list_epochs() == []


def test_longest_id_and_all_allowed_characters(store):
    for epoch_id in ("a" * 40, "AZaz09_-", "-", "_"):
        store.create(epoch_id)
        assert store.unwrap(epoch_id, store.wrap(epoch_id, b"k", b"s"), b"s") == b"k"
    assert store.list_epochs() == sorted(["a" * 40, "AZaz09_-", "-", "_"])


def test_inputs_must_be_bytes(store):
    store.create("e1")
    with pytest.raises(TypeError):
        store.wrap("e1", "text", b"s")
    with pytest.raises(TypeError):
        store.wrap("e1", b"k", "subject")
    # bytes-likes are fine
    blob = store.wrap("e1", bytearray(b"k"), memoryview(b"s"))
    assert store.unwrap("e1", bytearray(blob), b"s") == b"k"


def test_a_second_instance_finds_existing_keys(make_store):
    first = make_store()
    first.create("e1")
    blob = first.wrap("e1", b"k" * 32, b"s")
    second = make_store()
    assert second.exists("e1") and second.list_epochs() == ["e1"]
    assert second.unwrap("e1", blob, b"s") == b"k" * 32
    first.close()  # one instance closing does not break another
    assert second.unwrap("e1", blob, b"s") == b"k" * 32
    assert first.unwrap("e1", blob, b"s") == b"k" * 32  # nor itself, used again


# A new process: builds its own store from a JSON spec on stdin and runs one action.
CHILD = r"""
import json, sys
from storage import epoch_keys
spec = json.load(sys.stdin)
if spec["backend"] == "file":
    store = epoch_keys.FileEpochKeys(spec["dir"], bytes.fromhex(spec["kek"]))
else:
    store = epoch_keys.Pkcs11EpochKeys(spec["module"], spec["label"], spec["pin"])
try:
    if spec["action"] == "unwrap":
        out = store.unwrap(spec["epoch"], bytes.fromhex(spec["blob"]), b"s").hex()
    else:
        store.create(spec["epoch"])
        out = store.wrap(spec["epoch"], bytes.fromhex(spec["plain"]), b"s").hex()
except epoch_keys.EpochKeyGone:
    out = "gone"
finally:
    store.close()
print(out)
"""


def _new_process(spec: dict) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_new_process_finds_keys_and_sees_destruction(make_store, request, tmp_path, kek):
    store = make_store()
    if make_store.backend == "file":
        spec = {"backend": "file", "dir": str(store.directory), "kek": kek.hex()}
    else:
        hsm = request.getfixturevalue("softhsm")
        spec = {"backend": "pkcs11", "module": hsm.module, "label": hsm.label, "pin": hsm.pin}
    store.create("e1")
    blob = store.wrap("e1", b"k" * 32, b"s")
    assert _new_process({**spec, "action": "unwrap", "epoch": "e1", "blob": blob.hex()}) == (
        (b"k" * 32).hex()
    )
    # Made by another process while this one's session is open: found here.
    theirs = _new_process({**spec, "action": "create", "epoch": "e2", "plain": (b"z" * 32).hex()})
    assert store.exists("e2")
    assert store.unwrap("e2", bytes.fromhex(theirs), b"s") == b"z" * 32
    # Destroyed here: gone for a new process.
    store.destroy("e1")
    assert _new_process({**spec, "action": "unwrap", "epoch": "e1", "blob": blob.hex()}) == "gone"


def _in_forked_child(fn) -> bytes:
    """Run ``fn`` in a child made with os.fork; return what it returned (bytes)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, fn())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            with contextlib.suppress(Exception):
                os.write(write_end, f"child failed: {exc!r}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    out = b"".join(chunks)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_works_across_a_fork(store):
    store.create("e1")
    blob = store.wrap("e1", b"k" * 32, b"s")  # the parent's session is open now

    def child() -> bytes:
        plain = store.unwrap("e1", blob, b"s")
        return plain + store.wrap("e1", b"c" * 32, b"s")

    out = _in_forked_child(child)
    assert out[:32] == b"k" * 32
    assert store.unwrap("e1", out[32:], b"s") == b"c" * 32  # the child's blob, in the parent
    # The parent's own session was left alone by the child.
    assert store.unwrap("e1", blob, b"s") == b"k" * 32
    assert store.unwrap_many("e1", [(blob, b"s")] * 3) == [b"k" * 32] * 3


def test_threads_share_a_store_safely(store):
    store.create("e1")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(30):
                aad = f"t{n}-{i}".encode()
                key = os.urandom(32)
                assert store.unwrap("e1", store.wrap("e1", key, aad), aad) == key
            items = _items(200, prefix=f"t{n}")
            blobs = store.wrap_many("e1", items)
            pairs = [(b, aad) for b, (_, aad) in zip(blobs, items, strict=True)]
            assert store.unwrap_many("e1", pairs) == [p for p, _ in items]
        except BaseException as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- PKCS#11 only -----------------------------------------------------------------------------


@pytest.fixture
def hsm_store(softhsm):
    store = Pkcs11EpochKeys(softhsm.module, softhsm.label, softhsm.pin)
    yield store
    store.close()


def test_pkcs11_keys_are_generated_in_the_token_and_never_leave_it(hsm_store):
    import pkcs11
    from pkcs11 import Attribute, KeyType, MechanismFlag

    hsm_store.create("e1")
    [key] = _token_objects(hsm_store, "lethe-epoch-e1")
    expected = {
        Attribute.TOKEN: True,  # persistent
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.ALWAYS_SENSITIVE: True,
        Attribute.NEVER_EXTRACTABLE: True,
        Attribute.LOCAL: True,  # generated by the token, not imported
        Attribute.COPYABLE: False,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.WRAP: False,
        Attribute.SIGN: False,
        Attribute.DERIVE: False,
        Attribute.VALUE_LEN: 32,
    }
    assert {a: hsm_store._call(lambda s, a=a: key[a]) for a in expected} == expected
    with pytest.raises(pkcs11.AttributeSensitive):
        hsm_store._call(lambda s: key[Attribute.VALUE])

    def wrap_it_out(session):
        wrapper = session.generate_key(KeyType.AES, 256, capabilities=MechanismFlag.WRAP)
        return wrapper.wrap_key(key)

    with pytest.raises(pkcs11.KeyUnextractable):
        hsm_store._call(wrap_it_out)


def test_pkcs11_blob_is_standard_aes_gcm(hsm_store):
    """The token's CKM_AES_GCM output is plain AES-256-GCM in our blob layout: a session key
    that may be read shows the file backend would read the same blob."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from pkcs11 import Attribute, GCMParams, KeyType, Mechanism

    def run(session):
        key = session.generate_key(
            KeyType.AES, 256, template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}
        )
        nonce = os.urandom(12)
        aad = epoch_keys.base.wrap_aad("e1", b"s")
        sealed = key.encrypt(
            b"k" * 32, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
        )
        return AESGCM(bytes(key[Attribute.VALUE])).decrypt(nonce, sealed, aad)

    assert hsm_store._call(run) == b"k" * 32


def test_pkcs11_duplicate_labels_from_a_create_race(hsm_store):
    """Two processes creating one epoch at once may both generate a key: every process uses
    the one with the lowest CKA_ID, and destroy removes all of them."""
    from pkcs11 import Attribute, KeyType, MechanismFlag

    hsm_store.create("e1")
    [first] = _token_objects(hsm_store, "lethe-epoch-e1")
    first_id = hsm_store._call(lambda s: bytes(first[Attribute.ID]))

    def racer(session):
        session.generate_key(
            KeyType.AES,
            256,
            id=b"\xff" * 16 if first_id[0] < 0xFF else b"\x00" * 16,
            label="lethe-epoch-e1",
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
        )

    hsm_store._call(racer)
    assert len(_token_objects(hsm_store, "lethe-epoch-e1")) == 2
    blob = hsm_store.wrap("e1", b"k" * 32, b"s")
    assert hsm_store.unwrap("e1", blob, b"s") == b"k" * 32
    assert hsm_store.destroy("e1") is True
    assert _token_objects(hsm_store, "lethe-epoch-e1") == []


# python-pkcs11 finalises the failed search on the dead session from a __del__, which can only
# print its SessionHandleInvalid ("Exception ignored in ... __del__"): harmless, expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pkcs11_lost_session_is_reopened(hsm_store):
    hsm_store.create("e1")
    blob = hsm_store.wrap("e1", b"k" * 32, b"s")
    library = hsm_store._library
    with library.lock:
        library._sessions[hsm_store.token_label].close()  # e.g. the HSM dropped it
    assert hsm_store.unwrap("e1", blob, b"s") == b"k" * 32


def test_pkcs11_reopens_after_a_fork_without_python_fork_hooks(hsm_store):
    """The re-open path itself: a process id that changed (a fork made by C code that Python's
    at-fork hooks do not see) makes the store drop the old session and initialise again."""
    hsm_store.create("e1")
    blob = hsm_store.wrap("e1", b"k" * 32, b"s")
    library = hsm_store._library
    old_session = library._sessions[hsm_store.token_label]

    def child() -> bytes:
        library._pid = -1  # as if this process had not seen the fork
        out = hsm_store.unwrap("e1", blob, b"s")
        assert library._sessions[hsm_store.token_label] is not old_session
        assert library._pid == os.getpid()
        return out

    assert _in_forked_child(child) == b"k" * 32
    assert hsm_store.unwrap("e1", blob, b"s") == b"k" * 32


def test_pkcs11_wrong_settings_are_config_errors(softhsm, tmp_path):
    with pytest.raises(EpochKeyConfigError, match="PKCS11_MODULE"):
        Pkcs11EpochKeys(str(tmp_path / "missing.so"), softhsm.label, softhsm.pin)
    with Pkcs11EpochKeys(softhsm.module, "no-such-token", softhsm.pin) as store:
        with pytest.raises(EpochKeyConfigError, match="PKCS11_TOKEN_LABEL"):
            store.exists("e1")
    with Pkcs11EpochKeys(softhsm.module, softhsm.label, "0000") as store:
        with pytest.raises(EpochKeyConfigError, match="PKCS11_PIN"):
            store.exists("e1")


# --- files only -------------------------------------------------------------------------------


def test_file_is_0600_in_a_0700_directory_and_holds_no_raw_key(tmp_path, kek):
    store = FileEpochKeys(tmp_path / "keys", kek)
    store.create("e1")
    path = store.path("e1")
    assert path == tmp_path / "keys" / "e1.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = store._load("e1")
    data = path.read_bytes()
    assert len(raw) == 32 and raw not in data
    assert base64.b64encode(raw) not in data and raw.hex().encode() not in data
    assert os.listdir(path.parent) == ["e1.key"]  # no temporary file left


def test_file_loose_directory_is_tightened(tmp_path, kek):
    (tmp_path / "keys").mkdir(mode=0o755)
    os.chmod(tmp_path / "keys", 0o755)  # noqa: S103 - loose on purpose
    FileEpochKeys(tmp_path / "keys", kek).create("e1")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_file_destroy_zeroes_the_file_before_unlinking(tmp_path, kek, monkeypatch):
    store = FileEpochKeys(tmp_path / "keys", kek)
    store.create("e1")
    size = store.path("e1").stat().st_size
    seen = []
    real_unlink = os.unlink

    def spy(path, *args, **kwargs):
        seen.append(Path(path).read_bytes())
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(epoch_keys.files.os, "unlink", spy)
    assert store.destroy("e1")
    assert seen == [b"\x00" * size]


def test_file_zeroed_but_not_yet_unlinked_reads_as_gone(tmp_path, kek):
    store = FileEpochKeys(tmp_path / "keys", kek)
    store.create("e1")
    store.path("e1").write_bytes(b"\x00" * 64)
    with pytest.raises(EpochKeyGone):
        store.wrap("e1", b"k", b"s")


def test_file_under_another_sealing_key_is_unreadable(tmp_path, kek):
    FileEpochKeys(tmp_path / "keys", kek).create("e1")
    other = FileEpochKeys(tmp_path / "keys", os.urandom(32))
    assert other.exists("e1")
    with pytest.raises(EpochKeyUnreadable):
        other.wrap("e1", b"k", b"s")
    # A key file renamed to another epoch does not open either (the epoch id is bound).
    os.rename(tmp_path / "keys" / "e1.key", tmp_path / "keys" / "e2.key")
    with pytest.raises(EpochKeyUnreadable):
        FileEpochKeys(tmp_path / "keys", kek).wrap("e2", b"k", b"s")


def test_file_symlinked_key_is_not_followed(tmp_path, kek):
    store = FileEpochKeys(tmp_path / "keys", kek)
    store.create("e1")
    os.rename(store.path("e1"), tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", store.path("e1"))
    with pytest.raises(OSError):
        store.wrap("e1", b"k", b"s")


def test_file_directory_is_made_on_first_create_only(tmp_path, kek):
    store = FileEpochKeys(tmp_path / "keys", kek)
    assert store.list_epochs() == [] and not (tmp_path / "keys").exists()
    assert store.destroy("e1") is False


def test_file_sealing_key_must_be_32_bytes(tmp_path):
    with pytest.raises(EpochKeyConfigError):
        FileEpochKeys(tmp_path, b"short")


# --- configuration ----------------------------------------------------------------------------


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def test_from_config_defaults_to_files(tmp_path, kek):
    store = from_config({"EPOCH_KEY_DIR": str(tmp_path / "k"), "KEY_ENCRYPTION_KEY": _b64(kek)})
    assert isinstance(store, FileEpochKeys)
    store.create("e1")
    # The same key-encryption key, as bytes or unpadded base64url, opens the same files.
    for same in (kek, _b64(kek).rstrip("=")):
        again = from_config(
            {"EPOCH_KEY_BACKEND": "file", "EPOCH_KEY_DIR": str(tmp_path / "k")}
            | {"KEY_ENCRYPTION_KEY": same}
        )
        assert again.unwrap("e1", store.wrap("e1", b"k", b"s"), b"s") == b"k"


@pytest.mark.parametrize(
    ("cfg", "named"),
    [
        ({"KEY_ENCRYPTION_KEY": _b64(b"k" * 32)}, "EPOCH_KEY_DIR"),
        ({"EPOCH_KEY_DIR": "epoch-keys"}, "KEY_ENCRYPTION_KEY"),
        ({"EPOCH_KEY_DIR": "epoch-keys", "KEY_ENCRYPTION_KEY": ""}, "KEY_ENCRYPTION_KEY"),
        ({"EPOCH_KEY_DIR": "epoch-keys", "KEY_ENCRYPTION_KEY": _b64(b"k" * 16)}, "32 bytes"),
        (
            {"EPOCH_KEY_DIR": "epoch-keys", "KEY_ENCRYPTION_KEY": "not base64!"},
            "KEY_ENCRYPTION_KEY",
        ),
        ({"EPOCH_KEY_BACKEND": "vault"}, "EPOCH_KEY_BACKEND"),
        ({"EPOCH_KEY_BACKEND": "pkcs11"}, "PKCS11_MODULE"),
        ({"EPOCH_KEY_BACKEND": "pkcs11", "PKCS11_MODULE": "/x.so"}, "PKCS11_TOKEN_LABEL"),
        (
            {"EPOCH_KEY_BACKEND": "pkcs11", "PKCS11_MODULE": "/x.so", "PKCS11_TOKEN_LABEL": "t"},
            "PKCS11_PIN",
        ),
    ],
)
def test_from_config_names_what_is_missing(cfg, named):
    with pytest.raises(EpochKeyConfigError, match=named):
        from_config(cfg)


def test_from_config_pkcs11(softhsm):
    store = from_config(
        {
            "EPOCH_KEY_BACKEND": "PKCS11",
            "PKCS11_MODULE": softhsm.module,
            "PKCS11_TOKEN_LABEL": softhsm.label,
            "PKCS11_PIN": softhsm.pin,
        }
    )
    try:
        assert isinstance(store, Pkcs11EpochKeys)
        store.create("e1")
        assert store.unwrap("e1", store.wrap("e1", b"k", b"s"), b"s") == b"k"
        assert "pin" not in repr(store).lower() and softhsm.pin not in repr(store)
    finally:
        store.close()


def test_storage_layering():
    """storage/ imports nothing above it, and this package no Flask."""
    modules = sorted((REPO / "storage" / "epoch_keys").glob("*.py"))
    assert modules
    for source in (path.read_text() for path in modules):
        for name in ("rights", "web", "retention_policies", "flask"):
            assert f"import {name}" not in source and f"from {name}" not in source
