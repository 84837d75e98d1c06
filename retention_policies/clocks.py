"""When each record's retention clock started, as SQL: one expression per policy trigger, for
any table the trigger applies to, and the campaign a record belongs to (for legal holds on a
campaign). A trigger a table cannot answer (no such trigger, or no such column) raises at
start-up, where the policies are checked, rather than a silent "never expires".

Where a table reads its clock is the data map's (:class:`storage.datamap.Clock`): a trigger is
read on the row itself, unless it is about the row the table's rows belong to — the person's
account closing, their request closing — which the data map names; and the campaign of a row
is its perk's, or that of the row it is built on.
"""

from sqlalchemy import ColumnElement, case, func, select

from storage.datamap import Clock, built_on, category_of

NO_CLOCK = Clock()


def _closed(table):
    return table.closed_at


def _request_closed(table):
    # A request nobody ever verified never closes: its clock starts when it was received.
    return func.coalesce(
        table.closed_at,
        case((table.status.in_(("received", "awaiting_verification")), table.received_at)),
    )


def _settled(row, _):
    # A dead delivery's last attempt was claimed with a lease: next_attempt_at is when it was
    # given up.
    return func.coalesce(row.confirmed_at, row.delivered_at, row.next_attempt_at)


def _column(name: str):
    def clock(row, _):
        return getattr(row, name)

    return clock


# Each trigger as (the row, its owner) -> SQL, where ``owner(read)`` is ``read`` applied to the
# row the data map says the row's account or request events happen to (the row itself if none).
CLOCKS = {
    "account_closed": lambda row, owner: owner(_closed),
    "score_computed": _column("computed_at"),
    "record_recorded": _column("recorded_at"),
    "award_last_status": _column("status_at"),
    "disclosure_listed": _column("listed_at"),
    "promotion_shown": _column("shown_at"),
    "consent_ended": lambda row, owner: func.coalesce(row.withdrawn_at, owner(_closed)),
    "request_closed": lambda row, owner: owner(_request_closed),
    "notice_written": _column("created_at"),
    "receipt_issued": _column("issued_at"),
    "erased": _column("erased_at"),
    "delivery_settled": _settled,
    "sweep_run": _column("started_at"),
    "entry_written": _column("at"),
    "token_expired": _column("expires_at"),
    "request_answered": _column("created_at"),
}


def started(trigger: str, model, clock: Clock = NO_CLOCK) -> ColumnElement:
    """The moment ``model``'s rows started their clock under ``trigger`` (NULL: not yet), read
    where ``clock`` (the table's declaration in the data map) says."""
    own = dict(clock.columns).get(trigger)
    if own is not None:
        return getattr(model, own)

    def owner(read):
        parent = clock.parent
        if parent is None:
            return read(model)
        return (
            select(read(parent.model))
            .where(parent.model.id == getattr(model, parent.via))
            .scalar_subquery()
        )

    return CLOCKS[trigger](model, owner)


def _path_to_perk(model) -> list[tuple[type, str, type]] | None:
    """The links (row model, column, the model it names) from ``model``'s rows up to the perk
    they are about, or None when they are about no perk."""
    cat, path = category_of(model), []
    while cat is not None and cat.campaign is None:
        below = built_on(cat)
        if below is None:
            return None
        parent, via = below
        path.append((cat.model, via, parent.model))
        cat = parent
    if cat is None:
        return None
    return [*path, (cat.model, cat.campaign.via, cat.campaign.model)]


def campaign_of(model) -> ColumnElement | None:
    """The campaign a row belongs to, or None when the table has no campaign: its perk's, read
    through the rows it is built on (one subquery joining them)."""
    path = _path_to_perk(model)
    if path is None:
        return None
    perk = path[-1][2]
    query = select(perk.campaign_id)
    for child, via, parent in reversed(path[1:]):
        query = query.join(child, getattr(child, via) == parent.id)
    row, via, first = path[0]
    return query.where(first.id == getattr(row, via)).correlate(row).scalar_subquery()
