"""The demo's downstream recipients (``make run``): a small webhook receiver playing the two
subscribers the demo loader registers — Nova Mobile (the brand giving the perk) and ReviewHub
(a disclosure-list consumer).

Each delivery is checked as a real recipient must check it (Standard Webhooks 1.0, with the
``standardwebhooks`` library Lethe signs with): the ``webhook-signature`` must be an
HMAC-SHA256 of ``id.timestamp.body`` under the subscriber's ``whsec_`` secret, compared in
constant time, and ``webhook-timestamp`` within five minutes of now, so a captured delivery
cannot be replayed later. Anything else is answered 401 and never confirmed. A delivery that
passes is answered 204 at once, then confirmed through Lethe's API
(``POST /api/v1/deliveries/<webhook-id>/confirm`` with the subscriber's ``deliveries:confirm``
key), as a recipient does once it has acted. Lethe marks a delivery delivered only after the
receiver has answered, so a confirmation that comes too early ("Not delivered yet", 422) is
tried again, every second, for a minute.

The secrets and keys come from ``instance/demo-receiver.json``, which ``flask demo load
--receiver URL`` writes (mode 0600; development only: it refuses in production, as the demo's
published sign-ins do). The file is read again whenever it changes, so reloading the demo needs
no restart. Development only; imports nothing of Lethe's.

    python -m demo.receiver [--host 127.0.0.1] [--port 5001] [--config PATH] [--lethe-url URL]
"""

import argparse
import json
import logging
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

log = logging.getLogger("lethe.demo.receiver")
DEFAULT_CONFIG = Path("instance") / "demo-receiver.json"
MAX_BODY = 256 * 1024  # Lethe's bodies are thin: a few hundred bytes
_PATH = re.compile(r"^/hooks/(?P<slug>[a-z0-9-]{1,40})$")
_DELIVERY_ID = re.compile(r"^msg_[0-9a-f]{24}$")

# post(url, headers) -> HTTP status (0 when Lethe could not be reached).
Post = Callable[[str, dict], int]


def http_post(url: str, headers: dict) -> int:
    """POST with no body; the status Lethe answered, or 0 when it could not be reached."""
    req = urllib.request.Request(url, data=b"", headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the demo's Lethe
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Receiver:
    """A WSGI app receiving the demo subscribers' deliveries (``/hooks/<slug>``), and the
    confirmations it owes Lethe for them (:meth:`confirm_forever` in a thread, or
    :meth:`drain` until none is left)."""

    def __init__(
        self,
        config_path: str | Path = DEFAULT_CONFIG,
        *,
        lethe_url: str | None = None,
        post: Post = http_post,
        retry_seconds: float = 1.0,
        give_up_seconds: float = 60.0,
    ):
        self.config_path = Path(config_path)
        self.lethe_url = lethe_url
        self.post = post
        self.retry_seconds = retry_seconds
        self.give_up_seconds = give_up_seconds
        # (delivery id, API key, give up at): confirmations owed to Lethe.
        self.pending: queue.Queue[tuple[str, str, float]] = queue.Queue()
        self.confirmed: list[str] = []
        self._loaded: tuple[float, dict] | None = None

    def config(self) -> dict:
        """The loader's file, read again whenever it has changed."""
        mtime = self.config_path.stat().st_mtime
        if self._loaded is None or self._loaded[0] != mtime:
            self._loaded = (mtime, json.loads(self.config_path.read_text()))
        return self._loaded[1]

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        if match is None:
            return Response("Not found.\n", status=404, mimetype="text/plain")
        if request.method != "POST":
            return Response(status=405, headers={"Allow": "POST"})
        subscriber = next(
            (s for s in self.config()["subscribers"] if s["slug"] == match["slug"]), None
        )
        if subscriber is None:
            return Response("Not found.\n", status=404, mimetype="text/plain")
        if (request.content_length or 0) > MAX_BODY:
            return Response(status=413)
        body = request.get_data(cache=False)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = Webhook(subscriber["secret"]).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:  # bad base64, bad JSON: refused
            log.warning("%s: delivery refused: %s", subscriber["name"], exc)
            return Response("Signature not valid.\n", status=401, mimetype="text/plain")
        delivery_id = headers["webhook-id"]
        if not _DELIVERY_ID.match(delivery_id):
            return Response("Not a Lethe delivery.\n", status=400, mimetype="text/plain")
        log.info("%s: %s (%s)", subscriber["name"], event.get("type"), delivery_id)
        deadline = time.monotonic() + self.give_up_seconds
        self.pending.put((delivery_id, subscriber["api_key"], deadline))
        return Response(status=204)

    def confirm(self, delivery_id: str, api_key: str) -> str:
        """One try at confirming a delivery: "confirmed", "retry" (not delivered yet, or
        Lethe unreachable) or "failed" (refused: a wrong key, an unknown delivery)."""
        base = (self.lethe_url or self.config()["lethe_url"]).rstrip("/")
        status = self.post(
            f"{base}/api/v1/deliveries/{delivery_id}/confirm",
            {"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )
        if status == 200:
            self.confirmed.append(delivery_id)
            log.info("confirmed %s", delivery_id)
            return "confirmed"
        if status in (0, 422, 429) or status >= 500:
            return "retry"
        log.warning("Lethe refused the confirmation of %s (%s)", delivery_id, status)
        return "failed"

    def _step(self, block: float) -> bool:
        """Confirm the next owed delivery; False when none was waiting."""
        try:
            delivery_id, api_key, deadline = self.pending.get(timeout=block)
        except queue.Empty:
            return False
        if self.confirm(delivery_id, api_key) == "retry":
            if time.monotonic() < deadline:
                time.sleep(self.retry_seconds)
                self.pending.put((delivery_id, api_key, deadline))
            else:
                log.warning("gave up confirming %s", delivery_id)
        return True

    def drain(self, timeout: float = 30.0) -> None:
        """Confirm what is owed until nothing is left (or ``timeout`` seconds have passed)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self._step(block=0):
            pass

    def confirm_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self._step(block=0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="the demo loader's file")
    parser.add_argument("--lethe-url", default=None, help="Lethe's address (default: the file's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s receiver %(message)s")
    receiver = Receiver(args.config, lethe_url=args.lethe_url)
    receiver.config()  # a missing or unreadable file stops it here, not at the first delivery
    threading.Thread(target=receiver.confirm_forever, daemon=True).start()
    run_simple(args.host, args.port, receiver, threaded=True)


if __name__ == "__main__":
    main()
