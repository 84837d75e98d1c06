"""Long work in committed steps, with the commit in one place: :func:`run_steps`.

Some work must be durable piece by piece so that a run killed half-way resumes where it
stopped: an erasure's steps, a shred's re-wrap batches, the worker's claims before it calls a
receiver. Such work is written as a generator of *steps*: it ``yield``s wherever its work so
far must be committed, and returns its result. :func:`run_steps` is the runner: it runs each
step (the code from one ``yield`` to the next) in :func:`storage.db.unit_of_work`, which
commits it, or rolls it back if it raises. The work itself never commits; it only says where a
step ends. Steps compose: a job runs another's with ``yield from`` (an erasure inside the
worker's round), and its ``yield``s are commits of the same runner.

Why generators rather than a ``checkpoint()`` callable handed down: every commit stays visible
where it happens in the work's own code (a ``yield``), nothing can commit by another way, and
the work needs no extra argument threaded through every function it calls.

A ``yield`` behaves as ``commit()`` did in its place: when the commit fails, the runner rolls
the session back and raises the error at that ``yield``, so work that handles a failure (the
outbox retries a message whose job failed) sees it where it would have. An error raised by a
step itself rolls that step back and ends the run.
"""

from collections.abc import Generator
from inspect import GEN_SUSPENDED, getgeneratorstate
from typing import TypeVar

from storage.db import unit_of_work

T = TypeVar("T")
Steps = Generator[None, None, T]


def run_steps(steps: Steps[T]) -> T:
    """Run ``steps`` to the end, committing each step; returns what the work returned."""
    failure = None
    while True:
        try:
            with unit_of_work():
                finished, result = advance(steps, failure)
        except Exception as exc:
            if getgeneratorstate(steps) != GEN_SUSPENDED:
                raise  # the step itself failed: unit_of_work rolled it back; the run ends
            # The commit failed (unit_of_work rolled it back): the work hears of it at its
            # yield.
            failure = exc
            continue
        if finished:
            return result
        failure = None


def advance(steps: Steps[T], failure: Exception | None) -> tuple[bool, T | None]:
    """Run the next step (raising ``failure`` at the yield it resumes from, if any)."""
    try:
        if failure is None:
            next(steps)
        else:
            steps.throw(failure)
    except StopIteration as done:
        return True, done.value
    return False, None
