"""Background jobs the worker runs from the outbox, by topic. Jobs take a request id and
commit as they go; they are written to resume if a worker dies mid-way."""

from rights import erasure, outbox

HANDLERS = {
    "erasure.run": erasure.run,
}


def run_due(limit: int | None = None) -> dict[str, int]:
    """Send due messages and run due jobs (what ``flask worker`` does each round)."""
    return outbox.deliver_due(limit=limit, handlers=HANDLERS)
