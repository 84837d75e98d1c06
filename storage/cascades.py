"""The queries the data map's declarations answer (:mod:`storage.datamap`): what is built on
records, what must be deleted before them, and which rows of a shared table a category covers.

Rectification, incidents, erasure and the retention sweeps ask these rather than naming
tables, so a category added to the map with its dependants is held back, corrected and deleted
with everything else. Each question about many rows costs one query per table, however many
rows it is asked about.
"""

from collections.abc import Iterator

from sqlalchemy import delete, select

from storage.datamap import BY_KEY, Category, LedgerRecord, category_of, depth
from storage.db import db


def dependants(cat: Category) -> list[tuple[Category, object]]:
    """The categories built on ``cat``'s rows, in declared order, each with its column that
    names the row it is built on."""
    out = []
    for dependant in cat.dependants:
        other = BY_KEY[dependant.category]
        out.append((other, getattr(other.model, dependant.via)))
    return out


def dependants_of(record) -> list:
    """What is built directly on ``record`` (held back and corrected with it), as objects,
    one query per dependant table; nothing for a record nothing is built on."""
    cat = category_of(record)
    out = []
    for dependant, via in dependants(cat) if cat is not None else ():
        out += db.session.execute(select(dependant.model).where(via == record.id)).scalars()
    return out


def uncorrected_dependants(cat: Category, ids: list) -> Iterator[tuple[Category, list]]:
    """For each category built on ``cat``'s rows ``ids`` that has a correction, its rows there
    that do not stand corrected yet, as (id, subject id, value of the correction's first
    column). One query per dependant table whatever the number of ids, each run only when the
    caller moves on to it (so it may correct one category's rows before the next is read)."""
    for dependant, via in dependants(cat):
        correction = dependant.correction
        if correction is None:
            continue
        model = dependant.model
        rows = db.session.execute(
            select(
                model.id,
                getattr(model, dependant.subject_column),
                getattr(model, correction.marker),
            ).where(via.in_(ids), correction.pending(model))
        ).all()
        yield dependant, rows


def in_cascade_order(records: list) -> list:
    """``records`` with each one before what is built on it, in their order otherwise."""

    def level(record) -> int:
        cat = category_of(record)
        return depth(cat) if cat is not None else 0

    return sorted(records, key=level)


def delete_children(cat: Category, ids: list) -> int:
    """Delete the rows that must go just before ``cat``'s rows ``ids`` (one statement per
    child table; the caller then deletes the rows themselves). Returns how many went."""
    gone = 0
    for child in cat.children:
        column = getattr(child.model, child.via)
        gone += db.session.execute(delete(child.model).where(column.in_(ids))).rowcount
    return gone


def row_filter(entry: Category | LedgerRecord):
    """SQL: the rows of ``entry``'s table that it covers, or None when it covers them all."""
    if entry.where is None:
        return None
    column, values = entry.where
    return getattr(entry.model, column).in_(values)
