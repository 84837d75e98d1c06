"""Lethe as real server processes, for tests that race clients against it: gunicorn with
several worker processes (production's shape) or ``flask run`` (the embedded default), both
on the test app's own databases, keys and mail server."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Settings passed through to the server from the test app's config (the rest are defaults).
PASSED = (
    "SECRET_KEY",
    "KEY_ENCRYPTION_KEY",
    "BLIND_INDEX_KEY",
    "KEYSTORE_URL",
    "MAIL_BACKEND",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_DIR",
    "PUBLIC_URL",
    "WTF_CSRF_ENABLED",
    "RATELIMIT_ENABLED",
    "PUBLIC_FORM_MIN_SECONDS",
    "RETENTION_SWEEP_HOURS",
    "EPOCH_KEY_BACKEND",
    "EPOCH_KEY_DIR",
    "PKCS11_MODULE",
    "PKCS11_TOKEN_LABEL",
    "PKCS11_PIN",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(app, **overrides) -> dict:
    """The environment that makes ``create_app()`` in another process the test's app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_")}
    env["LETHE_DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    for name in PASSED:
        if name in app.config:
            value = app.config[name]
            env[f"LETHE_{name}"] = value if isinstance(value, str) else json.dumps(value)
    for name, value in overrides.items():
        env[f"LETHE_{name}"] = value if isinstance(value, str) else json.dumps(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2):  # noqa: S310 - our own server
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError("server did not start in time")


@contextlib.contextmanager
def serve(
    app,
    *,
    kind: str = "gunicorn",
    workers: int = 4,
    config: str = "/dev/null",
    log=None,
    **overrides,
):
    """Serve the test app's databases from real processes on a free port; yields the base URL.
    ``kind`` is ``gunicorn`` (``workers`` processes) or ``flask`` (``flask run``, threaded: the
    embedded default); gunicorn reads ``config`` (``gunicorn.conf.py``: production's settings),
    the bind address and worker count given here win. ``overrides`` are extra settings (names
    without ``LETHE_``)."""
    port = free_port()
    instance = Path(app.instance_path) / f"server-{port}"
    instance.mkdir(parents=True)
    env = server_env(app, **overrides)
    env["LETHE_INSTANCE_PATH"] = str(instance)
    if kind == "gunicorn":
        cmd = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--config",
            config,
            "--log-level",
            "warning",
            "tests.processes:make_app()",
        ]
    else:
        cmd = [
            str(BIN / "flask"),
            "--app",
            "tests.processes:make_app()",
            "run",
            "--port",
            str(port),
            "--with-threads",
            "--no-reload",
            "--no-debugger",
        ]
    proc = subprocess.Popen(  # noqa: S603 - our own executables
        cmd, cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        yield url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a server stops its workers), SIGKILL if it has not exited in ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_app():
    """The app a server process runs: the environment above, instance files in a temporary
    folder (never the developer's instance/); passwords hashed at the suite's cost."""
    from app import create_app
    from tests.helpers import cheap_password_hashing

    cheap_password_hashing()
    return create_app(None, instance_path=os.environ["LETHE_INSTANCE_PATH"])


def post_at(url: str, start_at: float, data: bytes = b"") -> int:
    """POST ``data`` (a form body) to ``url`` at the wall-clock time ``start_at``; the
    status. Run in N processes at once to race N clients (no redirects followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 server
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    time.sleep(max(0.0, start_at - time.time()))
    try:
        with opener.open(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def race(urls: list[str], data: bytes = b"", delay: float = 1.5) -> list[int]:
    """POST to each of ``urls`` from its own process, all at the same instant; the statuses."""
    import multiprocessing

    start_at = time.time() + delay
    with multiprocessing.get_context("spawn").Pool(len(urls)) as pool:
        return pool.starmap(post_at, [(url, start_at, data) for url in urls])
