"""Every benchmark script under scripts/ runs at a small size and prints its figures (issue
17, benchmarks that cannot rot): a rule that breaks a script's seed data, or a change that
breaks what it measures, fails the suite instead of the next person who measures.

Each script runs as its users run it, in a process of its own, with a timeout (a hang fails,
it does not stall the run). Its throwaway files go to the test's tmp_path (TMPDIR). The
scripts that take LETHE_BENCH_DATABASE_URL run on SQLite, and on PostgreSQL in the suite's
PostgreSQL pass: on this worker's test databases (tests/databases.py), emptied first by the
``app`` fixture as for any test; bench_shred.py drops and re-creates their schema, which the
next test finds whole. No figure is checked: a shared machine makes timings meaningless here.
"""

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.db import db
from tests.databases import PG_KEYS_URL, PG_URL

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
TIMEOUT = 180  # seconds: each takes a few on an idle machine; this much means a hang


@dataclass(frozen=True)
class Bench:
    """One run of a benchmark script: ``command`` is the script and arguments that keep it
    small; ``figures`` a pattern for a line of figures it always prints (searched line by line
    in its output); ``needs`` what else it takes."""

    command: str
    figures: str
    needs: str = ""

    @property
    def script(self) -> str:
        return self.command.split()[0]

    @property
    def id(self) -> str:
        """The script, and the options without a value (a second run of one script)."""
        words = self.command.split()
        flags = [
            w.lstrip("-")
            for w, after in zip(words, [*words[1:], "--"], strict=True)
            if w.startswith("--") and after.startswith("--")
        ]
        return "-".join([self.script.removesuffix(".py"), *flags])


# needs: DB takes LETHE_BENCH_DATABASE_URL / LETHE_BENCH_KEYSTORE_URL (PostgreSQL in the
# PostgreSQL pass); HSM needs SoftHSM2 (skipped without it, failed in CI: tests/conftest.py).
DB, HSM = "database", "softhsm"

# A new script is one entry here; keep each to a few seconds on an idle 2-core machine.
BENCHMARKS = [
    Bench("bench_access.py --records 50", r"^portability \(zip of CSV\) +[\d.]+ s", DB),
    Bench("bench_dashboard.py --requests 50", r"^CSV export \(best of 3\) +best", DB),
    Bench(
        "bench_epoch_keys.py --items 100 --batch 40 --single 10", r"^  pkcs11 \S+ +[\d.]+ s$", HSM
    ),
    Bench("bench_erasure.py --records 50", r"^ratio +[\d.]+ x$", DB),
    # Its own seed (benchdata.seed_promotions), which broke when promotions needed a consent.
    Bench("bench_erasure.py --records 30 --delete-heavy", r"^ratio +[\d.]+ x$", DB),
    Bench("bench_incident.py --awards 50", r"^second run: 0 corrected in [\d.]+ s$", DB),
    Bench(
        "bench_pictures.py --repeat 1 --pictures screenshot-1280x2000.png",
        r"^screenshot.* accepted",
    ),
    Bench(
        "bench_retention.py --rows 100 --keep 10 --members 10 --profile",
        r"^sweep / raw +[\d.]+x$",
        DB,
    ),
    Bench("bench_shred.py --keys 100 --batch 40", r"^shred: 100 keys re-wrapped in [\d.]+ s", DB),
    Bench(
        "bench_transparency.py --leaves 3000 --fill 1000 --queue-sample 100 --proofs 50 --http 5",
        r"^  last +\d+ batches +[\d,]+ /s",
        DB,
    ),
    Bench("bench_webhooks.py --events 20 --rounds 1 --profile", r"^worker / plain [\d.]+x", DB),
    # Its own SQLite databases: a real gunicorn beside the suite's (no PostgreSQL option here).
    Bench(
        "bench_api_paths.py --seconds 1 --clients 2 --workers 1 --threads 2",
        r"^  ingest +[\d.]+ /s$",
    ),
    Bench("bench_cpu_budget.py --n 3", r"^  ingest +[\d.]+ +[\d.]+ +\d+$", DB),
    # Its own SQLite databases and real servers (make bench-dsr also runs PostgreSQL, on
    # databases of its own): gunicorn with its forked job worker, as make run serves.
    Bench(
        "bench_dsr.py --database sqlite --members 60 --queued 8 --at-once 4 --rounds 1"
        " --singles 2 --seconds 0.5",
        r"^  statement vs hello-world +\d+ vs \d+ /s",
    ),
    # Its own SQLite databases and real servers: the embedded default, one gunicorn worker and
    # one flask worker.
    Bench(
        "bench_startup.py --runs 1 --requests 6 --setups import,gunicorn-1+worker",
        r"^gunicorn-1\+worker +first 200 /healthz [\d.]+ s, / [\d.]+ s; \d+ processes, RSS \d+",
    ),
    Bench(
        "bench_wakeup.py --runs 2 --records 3 --idle 0.2 --interval 2",
        r"^  verified -> receipt +median +\d+ ms",
        DB,
    ),
]


def test_every_benchmark_script_is_listed():
    """A new scripts/bench_*.py without a line in BENCHMARKS would rot unseen."""
    scripts = {path.name for path in SCRIPTS.glob("bench_*.py")}
    listed = {bench.script for bench in BENCHMARKS}
    assert not scripts - listed, f"not in BENCHMARKS: {', '.join(sorted(scripts - listed))}"
    assert not listed - scripts, f"no such script: {', '.join(sorted(listed - scripts))}"


@pytest.mark.parametrize("bench", BENCHMARKS, ids=lambda bench: bench.id)
def test_benchmark_runs_at_a_small_size(bench: Bench, request, tmp_path):
    """It exits 0 and prints its figures; its own checks (rows gone, keys re-wrapped,
    signatures verified) are asserts inside it, so they fail here too."""
    if bench.needs == HSM:
        request.getfixturevalue("softhsm")  # skips, or fails in CI, without SoftHSM2
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_BENCH_")}
    env["TMPDIR"] = str(tmp_path)  # the scripts' mkdtemp(): removed with tmp_path
    if bench.needs == DB and PG_URL:
        app = request.getfixturevalue("app")  # this worker's databases, emptied
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()  # no idle connection of ours in the way of the script's DDL
        env["LETHE_BENCH_DATABASE_URL"] = PG_URL
        if PG_KEYS_URL:
            env["LETHE_BENCH_KEYSTORE_URL"] = PG_KEYS_URL
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / bench.script), *bench.command.split()[1:]],
        cwd=SCRIPTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output
    assert re.search(bench.figures, done.stdout, re.MULTILINE), output
