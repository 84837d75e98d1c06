"""Streamed answers in pieces of a useful size.

Reports, exports and the disclosure list are produced piece by piece (a record, a row, a bit
of template), which keeps memory flat whatever their length; sent as produced, each piece
would be a chunk and a write to the socket of its own — for a report of a few records some
fifty writes. They are gathered here into pieces of at least ``SIZE`` characters (the last
may be shorter), so a small body goes in one write and a large one in few, and memory stays
bounded by ``SIZE``."""

from collections.abc import Iterable, Iterator

from flask import stream_with_context

SIZE = 32 * 1024


def coalesced(pieces: Iterable[str | bytes], size: int = SIZE) -> Iterator[str | bytes]:
    """``pieces`` joined into pieces of at least ``size`` (a body is all text or all bytes)."""
    held: list = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            yield held[0][:0].join(held)
            held, length = [], 0
    if held:
        yield held[0][:0].join(held)


def streamed(pieces: Iterable[str | bytes]):
    """A body for ``Response``: ``pieces`` coalesced, produced inside the request's context."""
    return stream_with_context(coalesced(pieces))
