"""Background jobs the worker runs from the outbox, by topic. Jobs take a request id and
commit as they go; they are written to resume if a worker dies mid-way."""

from rights.delivery import outbox
from rights.erasure import erasure, retention, shredding
from rights.ledger import audit_checkpoints
from rights.lifecycle import requests
from rights.recipients import webhooks
from storage.db import db

HANDLERS = {
    "erasure.run": erasure.run,
    "request.resume_link": requests.resume_link_job,
}


def run_due(limit: int | None = None) -> dict[str, int]:
    """Send due messages, run due jobs, and sign an audit checkpoint when enough entries have
    been added (what ``flask worker`` does each round)."""
    counts = outbox.deliver_due(limit=limit, handlers=HANDLERS)
    counts["webhooks_events_fanned_out"] = webhooks.fan_out_left_over()
    for key, n in webhooks.deliver_due().items():
        counts[f"webhooks_{key}"] = n
    counts["retention_swept"] = int(retention.run_if_due())
    counts["keys_shredded"] = int(shredding.run_if_due())
    if audit_checkpoints.maybe_write():
        db.session.commit()
    return counts
