"""The demo's downstream recipients as webhook subscribers (development only): the brand giving
Sam's perk and a disclosure-list consumer, told of corrections and erasures and served by
:mod:`demo.receiver` (``flask demo load --receiver URL``, which ``make run`` passes).

:func:`subscribe_receiver` subscribes them (or points them at a new receiver address) and
returns what the receiver must know — each subscriber's signing secret and its key to confirm
deliveries — which :func:`write_receiver_file` writes to the instance folder once that is
committed (mode 0600). Both refuse in production: the secrets are written to a file.
"""

import json
import os
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from rights.ledger import apikeys
from rights.recipients import outbound_http, webhooks
from storage.db import db
from storage.models import Subscriber

# The demo's downstream recipients (slug in the receiver's URL, name, the data map's recipient
# it speaks for), told of corrections and erasures by webhook and served by demo/receiver.py.
DEMO_SUBSCRIBERS = (
    ("nova-mobile", "Nova Mobile", "brand"),
    ("reviewhub", "ReviewHub (disclosure-list consumer)", "list_consumers"),
)
SUBSCRIBER_EVENTS = ["subject.rectified", "subject.erased"]
RECEIVER_FILE = "demo-receiver.json"


def receiver_file() -> Path:
    """Where the receiver finds the subscribers' secrets and keys: the instance folder."""
    return Path(current_app.instance_path) / RECEIVER_FILE


def _development_only() -> None:
    if current_app.config["ENV_NAME"] == "production":
        raise RuntimeError("The demo receiver's secrets are for development: not in production.")


def subscribe_receiver(receiver_url: str, path: Path | None = None) -> dict | None:
    """Make the demo's subscribers receive at ``receiver_url`` (flushes; development only).
    Idempotent: what the receiver's file already holds for a subscriber at that address is
    kept. A subscriber missing from the file (its secret was shown once, and lost) gets a new
    secret and a new confirmation key. Returns the file's new contents to write once
    committed (:func:`write_receiver_file`), or None when it is up to date."""
    _development_only()
    path = path or receiver_file()
    known = {s["slug"]: s for s in _read(path).get("subscribers", [])}
    entries, changed = [], False
    for slug, name, recipient in DEMO_SUBSCRIBERS:
        url = outbound_http.normalise(f"{receiver_url.rstrip('/')}/hooks/{slug}")
        row = (
            db.session.execute(
                select(Subscriber).where(Subscriber.name == name).order_by(Subscriber.id)
            )
            .scalars()
            .first()
        )
        entry = known.get(slug)
        if row is not None and entry and entry.get("subscriber_id") == row.id and row.url == url:
            entries.append(entry)
            continue
        changed = True
        if row is None:
            row, secret, key = webhooks.add(
                name, url, SUBSCRIBER_EVENTS, actor="demo", recipient=recipient
            )
        else:
            secret, key = _rekey(row, url)
            webhooks.set_recipient(row, recipient, actor="demo")
        entries.append(
            {"slug": slug, "name": name, "subscriber_id": row.id, "secret": secret, "api_key": key}
        )
    if not changed:
        return None
    return {"lethe_url": current_app.config["PUBLIC_URL"], "subscribers": entries}


def _rekey(subscriber: Subscriber, url: str) -> tuple[str, str]:
    """A demo subscriber whose secret and key were lost: new ones, at ``url`` (demo only)."""
    webhooks.check_target(url)
    subscriber.url = url
    secret = webhooks.rotate_secret(subscriber, actor="demo", overlap_hours=0)
    if subscriber.api_key_id is not None:
        apikeys.revoke(subscriber.api_key_id, actor="demo")
    row, key = apikeys.create(f"subscriber {subscriber.name}", ["deliveries:confirm"], actor="demo")
    subscriber.api_key_id = row.id
    db.session.flush()
    return secret, key


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_receiver_file(contents: dict, path: Path | None = None) -> Path:
    """Write the receiver's secrets and keys, readable by this user alone (mode 0600, set
    before a byte is written); refused in production."""
    _development_only()
    path = path or receiver_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT: set it
    with os.fdopen(fd, "w") as fh:
        json.dump(contents, fh, indent=2)
    return path
