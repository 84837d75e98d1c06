"""gunicorn settings for production: `gunicorn 'app:create_app()'` picks this file up.

Where it listens and how many it serves at once come from the environment, the defaults below
when unset: LETHE_BIND (host:port), LETHE_WORKERS (processes), LETHE_THREADS (per process).

With PROMETHEUS_MULTIPROC_DIR set (an empty folder of the server's own, e.g. on tmpfs), every
worker writes its request latencies there and /metrics adds them up, whichever worker answers
the scrape; the folder is emptied when the server starts. Unset, each worker counts alone and a
scrape sees only the worker that answered it.
"""

import multiprocessing
import os
from pathlib import Path

bind = os.environ.get("LETHE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("LETHE_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
# Threads, not one request per process: the public request form answers no sooner than
# LETHE_PUBLIC_FORM_MIN_SECONDS (0.4 s, so timing does not tell a member's address from a new
# one), and that wait sleeps a thread, not a whole worker. Capacity for form posts is
# workers × threads / 0.4 s: 4 × 8 / 0.4 = 80 posts a second here, far above the per-address
# rate limit, while other pages go on being served beside the sleeping threads.
worker_class = "gthread"
threads = int(os.environ.get("LETHE_THREADS", 8))
# The app is built once, in the master, before the workers fork: they share its pages (code,
# templates, the data map) instead of each building its own, and start at once.
preload_app = True
accesslog = "-"
# No query strings, referrers or user agents in access lines; web/logging.py redacts the
# tokens of emailed links from the paths. Lethe's own JSON line per request is on the
# "lethe.access" logger (stderr).
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def on_starting(server):
    """A new server starts with no samples of an earlier one's workers."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and Path(folder).is_dir():
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def post_fork(server, worker):
    """With preload_app, a connection the master opened while building the app (a check at
    start-up) would be shared by every worker: each worker drops its copy of the pools
    without closing the master's sockets, and opens its own."""
    app = getattr(server.app, "callable", None)
    if app is None or not hasattr(app, "app_context"):
        return
    from storage.db import db

    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


def child_exit(server, worker):
    """A worker gone: its live gauges leave the totals (its counts and latencies stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
