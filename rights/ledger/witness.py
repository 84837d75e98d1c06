"""What a witness of the transparency log checks, from public texts only: a checkpoint it kept,
the log's checkpoint now, the verifier keys it trusts and the consistency proof between the
two (:func:`check`). Pure: no database, no Flask; ``flask transparency verify`` fetches the
texts and calls it, and README shows how to do the same with nothing but the RFCs.

It fails loudly — :class:`Rewritten` — when the log now is not an extension of the one the
witness saw: a smaller tree (truncated), the same size with another root (a fork), or a
consistency proof that does not lead from the old root to the new one (a leaf changed,
removed or reordered). A note whose signature does not verify is :class:`NotSigned`."""

import base64
from dataclasses import dataclass

from rights.ledger import merkle, signed_note


class WitnessError(Exception):
    """The check could not be made or failed; the message says which, in plain words."""


class NotSigned(WitnessError):
    """A checkpoint's signature does not verify with the trusted keys (or it is malformed)."""


class Rewritten(WitnessError):
    """The log's history differs from what the witness saw earlier."""


@dataclass(frozen=True)
class Outcome:
    old: signed_note.Checkpoint
    new: signed_note.Checkpoint
    grew_by: int


def open_checkpoint(
    note: str, keys: list[str], origin: str | None = None
) -> signed_note.Checkpoint:
    """The checkpoint of a signed note, if a trusted key signed it (and it is for ``origin``)."""
    try:
        body, _ = signed_note.open_note(note, keys)
        checkpoint = signed_note.parse_checkpoint(body)
    except (signed_note.NoteError, ValueError) as exc:
        raise NotSigned(f"the checkpoint is not signed by a trusted key: {exc}") from None
    if origin is not None and checkpoint.origin != origin:
        raise NotSigned(f"the checkpoint is for another log ({checkpoint.origin!r})")
    return checkpoint


def check(old_note: str, new_note: str, keys: list[str], proof: list[str] | None) -> Outcome:
    """Check that ``new_note``'s tree extends ``old_note``'s, with ``proof`` (the base64
    hashes of the RFC 9162 consistency proof from the old size to the new; None when the sizes
    are equal or the old tree is empty)."""
    old = open_checkpoint(old_note, keys)
    new = open_checkpoint(new_note, keys, origin=old.origin)
    if new.size < old.size:
        raise Rewritten(
            f"the log shrank: it had {old.size} entries and now shows {new.size} (truncated)"
        )
    if new.size == old.size:
        if new.root != old.root:
            raise Rewritten(f"two different trees of the same size {old.size}: the log forked")
        return Outcome(old, new, 0)
    if old.size == 0:
        return Outcome(old, new, new.size)
    try:
        hashes = [base64.b64decode(h, validate=True) for h in proof or []]
    except (ValueError, TypeError):
        raise Rewritten("the consistency proof is malformed") from None
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, hashes):
        raise Rewritten(
            f"the log of {new.size} entries does not extend the one of {old.size} the witness "
            "saw: an entry was changed, removed or reordered"
        )
    return Outcome(old, new, new.size - old.size)


def new_keys_vouched_for(note: str, trusted: list[str], published: list[str]) -> list[str]:
    """Published keys this witness does not trust yet whose signature is on ``note`` next to
    a trusted key's (the log rotated its key and cosigns with the old one for a while): the
    keys to trust from now on. ``note`` must already have been opened with ``trusted``."""
    learned = []
    for key in published:
        if key in trusted or key in learned:
            continue
        try:
            signed_note.open_note(note, [key])
        except (signed_note.NoteError, ValueError):
            continue
        learned.append(key)
    return learned
