"""Background work the worker runs: jobs from the outbox, by topic, and the round that runs
everything due — or, for a worker given roles, only its roles' part.

Jobs take a request id (or the job's argument) and are written to resume if a worker dies
mid-way. Every piece of work here is written as steps (:mod:`storage.steps`): it yields where
its work so far must be committed, and :func:`run_due` is the runner that commits each step —
the one place the worker's round commits.

Roles (``flask worker --role``) split the round so that one kind of work never waits behind
another — a million-row sweep never delays a verification email:

- ``mail``: the outbox's emails;
- ``jobs``: the outbox's jobs (erasure runs, resume-link emails), and the transparency log's
  sequencer (receipts, statements and audit checkpoints appended, a checkpoint signed);
- ``webhooks``: events fanned out to subscribers, and their deliveries;
- ``sweeps``: retention, the shred of an ended key epoch, pictures held for review, and the
  audit trail's signed checkpoint. Retention and the shred run in one worker at a time across
  all workers (a lease, :mod:`storage.leases`).

A round can be told to stop (``stop``, asked between items: the worker got SIGTERM): it ends
after the item in hand — a message or job, a batch of webhook deliveries, a sweep — is
settled and committed, and starts nothing more.
"""

from collections.abc import Callable, Iterable

from rights.agents import drp_requests
from rights.delivery import outbox
from rights.erasure import erasure, retention, shredding
from rights.ledger import audit_checkpoints, transparency
from rights.lifecycle import evidence, requests
from rights.recipients import webhooks
from storage.steps import Steps, run_steps

ROLES = ("mail", "jobs", "webhooks", "sweeps")
# The outbox kinds each role takes (outbox.ROLE_OF_KIND the other way round).
OUTBOX_KINDS = {role: kind for kind, role in outbox.ROLE_OF_KIND.items()}


def _resume_link(reference: str) -> Steps[None]:
    """The resume-link job: it only flushes, and the outbox commits after every job."""
    yield from ()
    requests.resume_link_job(reference)


HANDLERS = {
    "erasure.run": erasure.erase_steps,
    drp_requests.CALLBACK_JOB: drp_requests.callback_steps,
    "request.resume_link": _resume_link,
}


def parse_roles(values: Iterable[str]) -> tuple[str, ...]:
    """Roles from ``--role`` values (repeated, comma-separated, or none: all), in round
    order. Raises ValueError naming an unknown one."""
    chosen = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = chosen - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role {sorted(unknown)[0]!r}: choose from {', '.join(ROLES)}")
    return tuple(role for role in ROLES if role in chosen) if chosen else ROLES


def run_due(
    limit: int | None = None,
    roles: Iterable[str] = ROLES,
    stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Send due messages, run due jobs and webhook deliveries, sweep when due and sign an
    audit checkpoint when enough entries have been added — what ``flask worker`` does each
    round, for its ``roles`` — each step committed."""
    return run_steps(round_steps(limit, roles, stop))


def round_steps(
    limit: int | None = None,
    roles: Iterable[str] = ROLES,
    stop: Callable[[], bool] | None = None,
) -> Steps[dict[str, int]]:
    """One round of the worker for ``roles``, as steps. Returns counts."""
    roles = set(roles)
    stop = stop or (lambda: False)
    counts: dict[str, int] = {}
    kinds = tuple(OUTBOX_KINDS[role] for role in ROLES if role in roles and role in OUTBOX_KINDS)
    if kinds:
        counts |= yield from outbox.deliver_due_steps(
            limit=limit, handlers=HANDLERS, kinds=kinds, stop=stop
        )
    if "jobs" in roles and not stop():
        # The transparency log's sequencer: what was signed since the last round, appended
        # and a checkpoint signed (a read when nothing is queued).
        counts["log_appended"] = yield from transparency.sequence_steps(stop)
    if "webhooks" in roles and not stop():
        counts["webhooks_events_fanned_out"] = yield from webhooks.fan_out_left_over_steps()
        delivered = yield from _webhook_steps(stop)
        for key, n in delivered.items():
            counts[f"webhooks_{key}"] = n
    if "sweeps" in roles:
        counts |= yield from _sweep_steps(stop)
    return counts


def _webhook_steps(stop: Callable[[], bool]) -> Steps[dict[str, int]]:
    """Up to ``webhooks.BATCH`` due deliveries, a claimed batch at a time, asking ``stop``
    between batches (a batch claimed is sent and settled before the worker stops)."""
    totals = {"delivered": 0, "retry": 0, "dead": 0, "disabled": 0}
    remaining = webhooks.BATCH
    while remaining > 0 and not stop():
        batch = yield from webhooks.deliver_due_steps(min(webhooks.CLAIM, remaining))
        for key, n in batch.items():
            totals[key] += n
        handled = sum(batch.values())
        remaining -= handled
        if handled < webhooks.CLAIM:
            break  # none due any more
    return totals


def _sweep_steps(stop: Callable[[], bool]) -> Steps[dict[str, int]]:
    counts: dict[str, int] = {}
    if stop():
        return counts
    counts["retention_swept"] = int((yield from retention.run_if_due_steps()))
    if stop():
        return counts
    counts["keys_shredded"] = int((yield from shredding.run_if_due_steps()))
    if stop():
        return counts
    # Pictures held for review before a correction is sent live an hour at most, even when
    # nobody comes back to the form (each use of the form sweeps too).
    counts["held_pictures_swept"] = evidence.sweep_held()
    audit_checkpoints.maybe_write()  # the last step: the runner commits it
    return counts
