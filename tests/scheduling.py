"""How the suite spreads over pytest-xdist's workers (``--dist loadgroup``); tests/conftest.py
calls these from its hooks and fixtures.

- A module's tests that share a module-scoped fixture (a live server with the demo loaded,
  say) form one group, run by one worker, so the fixture is built once, not once per worker;
  the browser tests form one group too, so that one Chromium serves them all.
- The longest tests start first: a worker that took one of them last would still be running
  it long after the others had finished.
- A ``serial`` test runs while no other worker runs a test, and starts last.
"""

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

# The longest single tests, slowest first (seconds on one worker, measured on a 2-core
# machine with the whole suite running, SQLite / PostgreSQL). xdist hands out the groups
# first, largest first (the browser tests, ~30 s), then single tests in this order. A test
# missing from here only starts in its turn: keep the list to tests that take seconds.
STARTS_FIRST = (
    "tests/test_api_schemathesis.py",  # 70: its 60 s budget, after gunicorn and the demo data
    "tests/test_webhook_workers.py::test_kill_minus_nine_of_a_worker_mid_batch",  # 11: a lease
    "tests/test_concurrent_load.py",  # 8
    "tests/test_single_use_links.py",  # 5: gunicorn with 4 workers
    "tests/test_benchmarks.py",  # 3-8 each: a benchmark script in a process of its own
    "tests/test_worker_roles.py",  # 15 and 9: real workers, signalled and raced
    "tests/test_shred_epochs.py::test_a_shred_killed_mid_way_resumes_and_loses_no_key",  # 5 / 9
    "tests/test_disclosure_list.py::test_a_long_list_streams_in_batches",  # 4 / 7
    "tests/test_erasure_kill.py",  # 2 each: a process killed, then a rerun
    "tests/test_public_form.py::test_the_timing_floor_sleeps_a_thread_not_a_worker",  # 2
    "tests/test_access.py::test_report_reads_in_batches_without_per_record_queries",  # 2 / 4
)


def group_shared_fixtures(items: list[pytest.Item]) -> None:
    """Put every browser test in one xdist group (one Chromium for the run, not one per
    worker), and each other test using a module-, package- or class-scoped fixture in its
    module's."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = any(
            fixturedef.scope in ("module", "package", "class")
            for fixturedefs in info.name2fixturedefs.values()
            for fixturedef in fixturedefs
        )
        if "browser" in info.names_closure:
            _join(item, "browser")
        elif shared:
            _join(item, item.nodeid.split("::", 1)[0])


def _join(item: pytest.Item, group: str) -> None:
    """Mark ``item`` as in xdist group ``group`` and end its node id with ``@group``, which is
    what xdist's scheduler reads. xdist 3.8 appends it by setting ``item._nodeid``, which
    pytest 9.2 no longer reads (a node's id is a NodeId in ``_id``): without this no group
    ever formed, and each worker built every module-scoped fixture for itself."""
    item.add_marker(pytest.mark.xdist_group(group))
    if getattr(item.config.option, "loadgroup", False) and not item.nodeid.endswith(f"@{group}"):
        grouped = f"{item.nodeid}@{group}"
        if hasattr(item, "_id"):
            item._id = type(item._id).parse(grouped)
        else:
            item._nodeid = grouped


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` (in place, the same on every worker): STARTS_FIRST's, in its order,
    then the rest in collection order, then the ``serial`` tests. A serial test waits for
    the test each other worker is running: at the end those are short ones, where at the
    start it waited for the whole Schemathesis run."""
    last = len(STARTS_FIRST) + 1

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("serial") is not None:
            return last
        return next(
            (i for i, prefix in enumerate(STARTS_FIRST) if item.nodeid.startswith(prefix)),
            len(STARTS_FIRST),
        )

    items.sort(key=rank)  # stable: collection order within each rank


@contextlib.contextmanager
def turn(root: Path, serial: bool) -> Iterator[None]:
    """Hold a shared lock for an ordinary test, an exclusive one for a ``serial`` test (it
    waits for the other workers' current tests, and they wait for it). A gate taken before
    the shared lock lets a waiting serial test in ahead of the next shared ones. ``root`` is
    the folder every worker of the run shares."""
    with open(root / "serial.gate", "a") as gate, open(root / "serial.lock", "a") as lock:
        if serial:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if serial:
                fcntl.flock(gate, fcntl.LOCK_UN)
