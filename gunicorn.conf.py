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
log = logging.getLogger("lethe.worker")


class JobWorkers:
    """The job workers of one server. Kept on the arbiter (``server.lethe_job_workers``), not
    in this module: a reload (SIGHUP) reads this file again into a new module, and the server
    must still know, and stop, the workers it forked before."""

    def __init__(self):
        self.pids: dict[int, int] = {}  # pid -> pidfd (-1 where there are none)
        self.clean: dict[int, int] = {}  # pid -> read end of its "I stopped as told" pipe
        self.stopping = threading.Event()
        self.died = False

    def signal(self, pid: int, sig: int) -> None:
        """Signal a job worker through its pidfd: never another process that took its pid
        after the arbiter reaped it."""
        try:
            if self.pids[pid] >= 0:
                signal.pidfd_send_signal(self.pids[pid], sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, OSError):
            pass

    def ended(self, pid: int, timeout: float | None) -> bool:
        fd = self.pids[pid]
        if fd >= 0:  # Linux: a pidfd turns readable when its process ends
            return bool(select.select([fd], [], [], timeout)[0])
        waited = 0.0  # elsewhere: the arbiter reaps it, and then it is gone
        while _alive(pid):
            if timeout is not None and waited >= timeout:
                return False
            self.stopping.wait(0.1)
            waited += 0.1
        return True

    def stopped_cleanly(self, pid: int) -> bool:
        return os.read(self.clean[pid], 1) == b"x"


def when_ready(server):
    """The master has loaded the app (preload_app) and listens: fork the job workers."""
    if not job_workers or getattr(server, "lethe_job_workers", None) is not None:
        return  # none asked for, or a reload (SIGHUP): the running ones go on
    from rights.jobs import parse_roles

    parse_roles(job_roles)  # an unknown role stops the start, naming it
    server.lethe_job_workers = workers = JobWorkers()
    for _ in range(job_workers):
        _fork_job_worker(server, workers)
    for pid in workers.pids:
        threading.Thread(target=_watch, args=(server, workers, pid), daemon=True).start()


def _fork_job_worker(server, workers: JobWorkers) -> None:
    app = getattr(server.app, "callable", None)
    gc.collect()
    gc.freeze()
    master = os.getpid()
    clean_read, clean_write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(clean_write)
        workers.pids[pid] = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else -1
        workers.clean[pid] = clean_read
        server.log.info("Booting job worker with pid: %s", pid)
        return
    code = 1
    try:
        os.close(clean_read)
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
        serve(app, job_roles or None)  # returns once told to stop, the item in hand done
        os.write(clean_write, b"x")
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


def _watch(server, workers: JobWorkers, pid: int) -> None:
    """A job worker that ends while the server runs stops the server, with a failing exit
    status (see above). One that stopped as told (the whole process group was: Ctrl-C, a
    supervisor) is given the time the master takes to drain its web workers to say so."""
    workers.ended(pid, None)
    grace = server.cfg.graceful_timeout + 5 if workers.stopped_cleanly(pid) else 0.5
    if not workers.stopping.wait(grace):
        workers.died = True
        server.log.error("job worker %s exited: stopping the server", pid)
        os.kill(os.getpid(), signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def on_exit(server):
    """The server stops: the job workers finish the item in hand and exit. A server stopped
    because one died exits with status 1, for a supervisor to restart it."""
    workers = getattr(server, "lethe_job_workers", None)
    if workers is None:
        return
    workers.stopping.set()
    for pid in workers.pids:
        workers.signal(pid, signal.SIGTERM)
    for pid in workers.pids:
        if not workers.ended(pid, server.cfg.graceful_timeout):
            server.log.warning("job worker %s did not stop in time: killed", pid)
            workers.signal(pid, signal.SIGKILL)
    if workers.died:
        raise SystemExit(1)
