"""When each record's retention clock started, as SQL: one expression per policy trigger, for
any table the trigger applies to (a column of the row, or of the member or request it belongs
to), and the campaign a record belongs to (for legal holds on a campaign). A trigger a table
cannot answer is a :class:`KeyError` at start-up, not a silent "never expires"."""

from sqlalchemy import ColumnElement, case, func, select

from storage.models import (
    Delivery,
    Disclosure,
    Feedback,
    FeedbackPicture,
    Member,
    Perk,
    PerkAward,
    Promotion,
    RightsRequest,
    Subject,
)


def _account_closed(model):
    if model is Member:
        return Member.closed_at
    # On the subject, not the member: the member row goes 30 days after closing, and the
    # clocks of what hangs off the account must keep running.
    return select(Subject.closed_at).where(Subject.id == model.subject_id).scalar_subquery()


def _request_closed(model):
    # A request nobody ever verified never closes: its clock starts when it was received.
    closed = func.coalesce(
        RightsRequest.closed_at,
        case(
            (
                RightsRequest.status.in_(("received", "awaiting_verification")),
                RightsRequest.received_at,
            )
        ),
    )
    if model is RightsRequest:
        return closed
    return select(closed).where(RightsRequest.id == model.request_id).scalar_subquery()


def _column(name: str):
    def clock(model):
        return getattr(model, name)

    return clock


def _settled(model):
    if model is Delivery:
        # A dead delivery's last attempt was claimed with a lease: next_attempt_at is when it
        # was given up.
        return func.coalesce(Delivery.confirmed_at, Delivery.delivered_at, Delivery.next_attempt_at)
    return model.created_at  # an event: its deliveries go first (they refer to it)


CLOCKS = {
    "account_closed": _account_closed,
    "score_computed": _column("computed_at"),
    "record_recorded": _column("recorded_at"),
    "award_last_status": _column("status_at"),
    "disclosure_listed": _column("listed_at"),
    "promotion_shown": _column("shown_at"),
    "consent_ended": lambda model: func.coalesce(model.withdrawn_at, _account_closed(model)),
    "request_closed": _request_closed,
    "notice_written": _column("created_at"),
    "receipt_issued": _column("issued_at"),
    "erased": _column("erased_at"),
    "delivery_settled": _settled,
    "sweep_run": _column("started_at"),
    "entry_written": _column("at"),
    "token_expired": _column("expires_at"),
    "request_answered": _column("created_at"),
}


def started(trigger: str, model) -> ColumnElement:
    """The moment ``model``'s rows started their clock under ``trigger`` (NULL: not yet)."""
    expression = CLOCKS[trigger](model)
    if expression is None:
        raise KeyError(f"{model.__tablename__} cannot tell when '{trigger}' happened")
    return expression


def _award_campaign(award_id):
    return (
        select(Perk.campaign_id)
        .join(PerkAward, PerkAward.perk_id == Perk.id)
        .where(PerkAward.id == award_id)
        .scalar_subquery()
    )


def campaign_of(model) -> ColumnElement | None:
    """The campaign a row belongs to, or None when the table has no campaign."""
    if model is PerkAward:
        return select(Perk.campaign_id).where(Perk.id == PerkAward.perk_id).scalar_subquery()
    if model in (Disclosure, Promotion, Feedback):
        return _award_campaign(model.award_id)
    if model is FeedbackPicture:
        return (
            select(Perk.campaign_id)
            .join(PerkAward, PerkAward.perk_id == Perk.id)
            .join(Feedback, Feedback.award_id == PerkAward.id)
            .where(Feedback.id == FeedbackPicture.feedback_id)
            .correlate(FeedbackPicture)
            .scalar_subquery()
        )
    return None
