"""gunicorn settings for production: `gunicorn 'app:create_app()'` picks this file up.

Where it listens and how many it serves at once come from the environment, the defaults below
when unset: LETHE_BIND (host:port), LETHE_WORKERS (processes), LETHE_THREADS (per process).

With PROMETHEUS_MULTIPROC_DIR set (an empty folder of the server's own, e.g. on tmpfs), every
worker writes its request latencies there and /metrics adds them up, whichever worker answers
the scrape; the folder is emptied when the server starts. Unset, each worker counts alone and a
scrape sees only the worker that answered it.

LETHE_JOB_WORKERS (default 0) starts that many background workers (what ``flask worker``
runs: emails, jobs, webhooks, sweeps; LETHE_JOB_ROLES picks roles, all by default) from the
server itself, forked from the master after the app is loaded: they share its pages as the
web workers do, where a ``flask worker`` process builds the app again in memory of its own.
They stop with the server (SIGTERM: the item in hand finishes first). One that dies on its
own stops the server, for the supervisor to restart the whole: a server is never left taking
requests that nothing works through.
"""

import gc
import logging
import multiprocessing
import os
import select
import signal
import threading
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


def pre_fork(server, worker):
    """Objects the master built (the app, its modules, templates) move to the collector's
    permanent generation before a worker forks: the workers' collections never write to
    them, so their pages stay shared with the master instead of being copied into each."""
    gc.collect()
    gc.freeze()


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


job_workers = int(os.environ.get("LETHE_JOB_WORKERS", 0))
job_roles = tuple(r for r in os.environ.get("LETHE_JOB_ROLES", "").split(",") if r.strip())
_job_pids: dict[int, int] = {}  # pid -> pidfd
_stopping = threading.Event()
log = logging.getLogger("lethe.worker")


def when_ready(server):
    """The master has loaded the app (preload_app) and listens: fork the job workers."""
    if job_workers:
        from rights.jobs import parse_roles

        parse_roles(job_roles)  # an unknown role stops the start, naming it
    for _ in range(job_workers):
        _fork_job_worker(server)
    if _job_pids:
        threading.Thread(target=_watch_job_workers, args=(server,), daemon=True).start()


def _fork_job_worker(server) -> None:
    app = getattr(server.app, "callable", None)
    gc.collect()
    gc.freeze()
    master = os.getpid()
    pid = os.fork()
    if pid:
        _job_pids[pid] = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else -1
        server.log.info("Booting job worker with pid: %s", pid)
        return
    code = 1
    try:
        # The child is a worker, not a server: no listening sockets, the arbiter's signal
        # handling undone (the worker loop sets its own), its own database connections.
        for listener in server.LISTENERS:
            listener.close()
        for sig in (*server.SIGNALS, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _stop_when_orphaned(master)
        from cli.worker import serve
        from storage import trace
        from storage.db import db

        trace.json_lines_somewhere(trace.jobs_log)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
        serve(app, job_roles or None)
        code = 0
    except BaseException:  # noqa: BLE001 - logged; the child must never return into gunicorn
        log.exception("job worker failed")
    finally:
        os._exit(code)


def _stop_when_orphaned(master: int) -> None:
    """A master killed outright (SIGKILL, OOM) cannot stop its job workers: Linux sends them
    SIGTERM when it dies (PR_SET_PDEATHSIG), so none runs on, orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: gunicorn's own workers poll, these do not
        return
    if os.getppid() != master:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_job_workers(server) -> None:
    """A job worker that exits while the server runs stops the server (see above)."""
    fds = {fd: pid for pid, fd in _job_pids.items() if fd >= 0}
    if fds:  # Linux: a pidfd turns readable when its process ends
        select.select(list(fds), [], [])
    else:  # elsewhere: the arbiter reaps it, and then it is gone
        while all(_alive(pid) for pid in _job_pids):
            _stopping.wait(1.0)
    # The whole process group may have been told to stop (Ctrl-C, a supervisor): the master
    # hears it a moment after its job worker did.
    if not _stopping.wait(2.0):
        server.log.error("a job worker exited: stopping the server")
        os.kill(os.getpid(), signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def on_exit(server):
    """The server stops: the job workers finish the item in hand and exit."""
    _stopping.set()
    for pid in _job_pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid, fd in _job_pids.items():
        if fd >= 0:
            ended = select.select([fd], [], [], server.cfg.graceful_timeout)[0]
        else:
            waited = 0.0
            while _alive(pid) and waited < server.cfg.graceful_timeout:
                _stopping.wait(0.1)
                waited += 0.1
            ended = not _alive(pid)
        if not ended:
            server.log.warning("job worker %s did not stop in time: killed", pid)
            os.kill(pid, signal.SIGKILL)
