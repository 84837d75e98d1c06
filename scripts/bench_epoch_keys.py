"""Benchmark: wrap and unwrap throughput of the epoch key backends (storage/epoch_keys/).

Not a test: prints figures, to estimate how long a shred takes to re-wrap every surviving
subject key. For each backend, N random 32-byte subject keys (each with its own associated
data, as the vault binds a subject id) are wrapped with ``wrap_many`` in batches of --batch,
unwrapped with ``unwrap_many``, and then *re-wrapped* from one epoch to the next the way a
shred does it (``unwrap_many`` under the old epoch, ``wrap_many`` under the new, per batch).
Every result is checked against the original keys. A smaller sample of single calls
(``wrap``/``unwrap``, one key look-up each) shows what batching saves.

Backends:
- file: FileEpochKeys in a throwaway directory, a random sealing key;
- pkcs11: Pkcs11EpochKeys on a throwaway SoftHSM2 token (softhsm2-util --init-token in a
  temporary directory, SOFTHSM2_CONF pointing at it), or on an existing token with
  --module/--token-label/--pin (its epoch keys are made and destroyed by the run).

    python scripts/bench_epoch_keys.py [--items 100000] [--batch 1000] [--single 5000]
                                       [--backends file,pkcs11] [--module PATH]
                                       [--token-label L --pin P]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.epoch_keys import EpochKeyStore, FileEpochKeys, Pkcs11EpochKeys  # noqa: E402

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
SHRED_SUBJECTS = 1_000_000


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def measure(store: EpochKeyStore, n: int, batch: int, single: int) -> dict[str, float]:
    """Seconds for each phase (and the items it handled)."""
    items = [(os.urandom(32), f"lethe-subject-key\x00subject-{i}".encode()) for i in range(n)]
    aads = [aad for _, aad in items]
    store.create("bench-old")
    store.create("bench-new")
    try:
        t = time.perf_counter()
        blobs = []
        for chunk in _batches(items, batch):
            blobs.extend(store.wrap_many("bench-old", chunk))
        wrap_s = time.perf_counter() - t

        pairs = list(zip(blobs, aads, strict=True))
        t = time.perf_counter()
        plain = []
        for chunk in _batches(pairs, batch):
            plain.extend(store.unwrap_many("bench-old", chunk))
        unwrap_s = time.perf_counter() - t
        assert plain == [p for p, _ in items], "unwrap_many returned other keys"

        t = time.perf_counter()
        rewrapped = []
        for chunk in _batches(pairs, batch):
            keys = store.unwrap_many("bench-old", chunk)
            rewrapped.extend(
                store.wrap_many("bench-new", list(zip(keys, [a for _, a in chunk], strict=True)))
            )
        rewrap_s = time.perf_counter() - t
        check = store.unwrap_many("bench-new", list(zip(rewrapped[:batch], aads, strict=False)))
        assert check == [p for p, _ in items[:batch]], "re-wrapped keys do not match"

        sample = items[:single]
        t = time.perf_counter()
        single_blobs = [store.wrap("bench-old", p, a) for p, a in sample]
        single_wrap_s = time.perf_counter() - t
        t = time.perf_counter()
        back = [
            store.unwrap("bench-old", b, a) for b, (_, a) in zip(single_blobs, sample, strict=True)
        ]
        single_unwrap_s = time.perf_counter() - t
        assert back == [p for p, _ in sample], "single unwrap returned other keys"
    finally:
        store.destroy("bench-old")
        store.destroy("bench-new")
    return {
        "wrap_many": wrap_s,
        "unwrap_many": unwrap_s,
        "re-wrap (unwrap_many + wrap_many)": rewrap_s,
        "wrap (single calls)": single_wrap_s,
        "unwrap (single calls)": single_unwrap_s,
    }


def softhsm_token(tmp: Path) -> tuple[str, str, str]:
    """A throwaway SoftHSM2 token in ``tmp``: (module, label, pin)."""
    module = next((p for p in SOFTHSM_MODULES if os.path.isfile(p)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        raise SystemExit("SoftHSM2 not found (apt-get install softhsm2), or use --backends file")
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "lethe-bench"]
        + ["--pin", "1234", "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    return module, "lethe-bench", "1234"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single", type=int, default=5000, help="sample of single calls")
    parser.add_argument("--backends", default="file,pkcs11")
    parser.add_argument("--module", help="PKCS#11 module (default: a throwaway SoftHSM2 token)")
    parser.add_argument("--token-label")
    parser.add_argument("--pin")
    args = parser.parse_args()
    single = min(args.single, args.items)

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lethe-bench-epoch-") as tmp_dir:
        tmp = Path(tmp_dir)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "file":
                store: EpochKeyStore = FileEpochKeys(tmp / "epoch-keys", os.urandom(32))
                name = "file (FileEpochKeys)"
            elif backend == "pkcs11":
                if args.module:
                    module, label, pin = args.module, args.token_label, args.pin
                    if not (label and pin):
                        raise SystemExit("--module needs --token-label and --pin")
                else:
                    module, label, pin = softhsm_token(tmp)
                store = Pkcs11EpochKeys(module, label, pin)
                name = f"pkcs11 ({Path(module).name})"
            else:
                raise SystemExit(f"unknown backend {backend!r}")
            try:
                results[name] = measure(store, args.items, args.batch, single)
            finally:
                store.close()

    print(
        f"\n{args.items:,} subject keys (32 bytes), batches of {args.batch:,}; "
        f"single calls on {single:,}; every result checked"
    )
    print(f"\n{'backend':24} {'operation':36} {'s':>8} {'items/s':>11}")
    for name, phases in results.items():
        for phase, seconds in phases.items():
            count = single if "single" in phase else args.items
            print(f"{name:24} {phase:36} {seconds:8.2f} {count / seconds:11,.0f}")
    print(f"\nestimated shred re-wrap of {SHRED_SUBJECTS:,} subject keys (key manager only):")
    for name, phases in results.items():
        rate = args.items / phases["re-wrap (unwrap_many + wrap_many)"]
        print(f"  {name:24} {SHRED_SUBJECTS / rate:8.1f} s")


if __name__ == "__main__":
    main()
