"""Background work the worker runs: jobs from the outbox, by topic, and the round that runs
everything due.

Jobs take a request id (or the job's argument) and are written to resume if a worker dies
mid-way. Every piece of work here is written as steps (:mod:`storage.steps`): it yields where
its work so far must be committed, and :func:`run_due` is the runner that commits each step —
the one place the worker's round commits."""

from rights.delivery import outbox
from rights.erasure import erasure, retention, shredding
from rights.ledger import audit_checkpoints
from rights.lifecycle import evidence, requests
from rights.recipients import webhooks
from storage.steps import Steps, run_steps


def _resume_link(reference: str) -> Steps[None]:
    """The resume-link job: it only flushes, and the outbox commits after every job."""
    yield from ()
    requests.resume_link_job(reference)


HANDLERS = {
    "erasure.run": erasure.erase_steps,
    "request.resume_link": _resume_link,
}


def run_due(limit: int | None = None) -> dict[str, int]:
    """Send due messages, run due jobs, and sign an audit checkpoint when enough entries have
    been added (what ``flask worker`` does each round), each step committed."""
    return run_steps(round_steps(limit))


def round_steps(limit: int | None = None) -> Steps[dict[str, int]]:
    """One round of the worker, as steps. Returns counts."""
    counts = yield from outbox.deliver_due_steps(limit=limit, handlers=HANDLERS)
    counts["webhooks_events_fanned_out"] = yield from webhooks.fan_out_left_over_steps()
    delivered = yield from webhooks.deliver_due_steps()
    for key, n in delivered.items():
        counts[f"webhooks_{key}"] = n
    counts["retention_swept"] = int((yield from retention.run_if_due_steps()))
    counts["keys_shredded"] = int((yield from shredding.run_if_due_steps()))
    # Pictures held for review before a correction is sent live an hour at most, even when
    # nobody comes back to the form (each use of the form sweeps too).
    counts["held_pictures_swept"] = evidence.sweep_held()
    audit_checkpoints.maybe_write()  # the last step: the runner commits it
    return counts
