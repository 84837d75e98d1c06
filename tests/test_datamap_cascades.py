"""The data map's cascades: what is built on a record, what goes before it, which rows of a
shared table a category covers, and where a table's clock is read — declared once in
storage/datamap.py, checked here against the schema, and answered by storage/cascades.py with
one query per table."""

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from retention_policies.clocks import CLOCKS
from rights.holdings import records
from storage import cascades, datamap
from storage.datamap import BY_KEY, CATEGORIES, LEDGER_RECORDS, NOW, Correction
from storage.db import db
from storage.models import (
    DeliveryAttempt,
    Disclosure,
    Feedback,
    OutboxMessage,
    PerkAward,
    Promotion,
)
from tests import factories

NOW_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _refers_to(model, column: str, target) -> bool:
    """Whether ``model.column`` is a foreign key to ``target``'s id."""
    return any(
        fk.column.table is target.__table__ and fk.column.name == "id"
        for fk in model.__table__.c[column].foreign_keys
    )


@pytest.mark.parametrize("cat", CATEGORIES, ids=lambda c: c.key)
def test_every_declared_dependant_and_child_is_a_real_reference(cat):
    for dependant in cat.dependants:
        other = BY_KEY[dependant.category]
        assert _refers_to(other.model, dependant.via, cat.model), (cat.key, dependant)
    for child in cat.children:
        assert _refers_to(child.model, child.via, cat.model), (cat.key, child)


@pytest.mark.parametrize("entry", CATEGORIES + LEDGER_RECORDS, ids=lambda e: e.key)
def test_row_filters_clocks_and_campaigns_name_real_columns(entry):
    columns = entry.model.__table__.c
    if entry.where is not None:
        assert entry.where[0] in columns and entry.where[1]
    if entry.clock.parent is not None:
        parent = entry.clock.parent
        assert _refers_to(entry.model, parent.via, parent.model)
    for trigger, column in entry.clock.columns:
        assert trigger in CLOCKS and column in columns
    campaign = getattr(entry, "campaign", None)
    if campaign is not None:
        assert _refers_to(entry.model, campaign.via, campaign.model)
        assert "campaign_id" in campaign.model.__table__.c


@pytest.mark.parametrize("cat", CATEGORIES, ids=lambda c: c.key)
def test_contestable_records_have_a_name_and_corrections_real_columns(cat):
    columns = cat.model.__table__.c
    if cat.contestable:
        assert "external_id" in columns
    if cat.correction is not None:
        assert all(column in columns for column, _ in cat.correction.values)


def test_what_is_built_on_what():
    awards = BY_KEY["perk_awards"]
    assert [c.key for c, _ in cascades.dependants(awards)] == [
        "disclosures",
        "promotions",
        "feedback",
    ]
    assert datamap.built_on(BY_KEY["disclosures"]) == (awards, "award_id")
    assert datamap.built_on(BY_KEY["feedback_pictures"]) == (BY_KEY["feedback"], "feedback_id")
    assert datamap.built_on(awards) is None
    assert [datamap.depth(BY_KEY[k]) for k in ("perk_awards", "feedback", "feedback_pictures")] == [
        0,
        1,
        2,
    ]
    assert [c.key for c in datamap.contestable()] == [
        "perk_awards",
        "disclosures",
        "promotions",
        "consents",
    ]


def test_a_correction_says_what_it_sets_and_whether_it_is_made():
    correction = Correction((("withdrawn_at", NOW), ("status", "x")))
    assert correction.marker == "withdrawn_at"
    assert correction.at(NOW_AT) == {"withdrawn_at": NOW_AT, "status": "x"}
    assert not correction.made(Promotion(withdrawn_at=None))
    assert correction.made(Promotion(withdrawn_at=NOW_AT))
    status = BY_KEY["disclosures"].correction
    assert status.made(Disclosure(status="withdrawn"))
    assert not status.made(Disclosure(status="required"))


@contextmanager
def _queries():
    """The SELECT statements run inside the block, by the table they read first."""
    seen = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _world(n_awards: int) -> list[int]:
    """One member with ``n_awards`` received awards, each listed, promoted and asked about."""
    factories.member(1)
    ids = []
    for n in range(1, n_awards + 1):
        award = factories.award(n, 1, status="received")
        records.upsert_disclosure(
            {"disclosure_id": f"dl-{n}", "award_id": f"aw-{n}", "status": "disclosed"},
            source="test",
            actor="t",
        )
        records.upsert_promotion(
            {
                "promotion_id": f"pr-{n}",
                "member_id": "m-1",
                "award_id": f"aw-{n}",
                "audience": "friends",
                "message": "Person 1 just won!",
            },
            source="test",
            actor="t",
        )
        feedback = Feedback(subject_id=award.subject_id, award_id=award.id)
        records.apply_changes(
            feedback, {"rating": None}, subject_id=award.subject_id, source="t", actor="bot"
        )
        ids.append(award.id)
    db.session.commit()
    return ids


def test_an_awards_dependants_take_one_query_per_table(app):
    with app.app_context():
        ids = _world(3)
        award = db.session.get(PerkAward, ids[0])
        with _queries() as seen:
            rows = cascades.dependants_of(award)
        assert len(seen) == 3
        assert [type(r) for r in rows] == [Disclosure, Promotion, Feedback]
        assert all(r.award_id == award.id for r in rows)
        assert cascades.dependants_of(db.session.get(Disclosure, rows[0].id)) == []


def test_dependants_of_many_awards_take_one_query_per_corrected_table(app):
    with app.app_context():
        ids = _world(12)
        db.session.execute(
            Disclosure.__table__.update()
            .where(Disclosure.award_id == ids[0])
            .values(status="withdrawn")
        )
        with _queries() as seen:
            found = {
                cat.key: rows
                for cat, rows in cascades.uncorrected_dependants(BY_KEY["perk_awards"], ids)
            }
        # Feedback has no correction: it is held back with the award, never changed.
        assert list(found) == ["disclosures", "promotions"] and len(seen) == 2
        assert len(found["disclosures"]) == 11  # one already withdrawn
        assert {old for _, _, old in found["disclosures"]} == {"disclosed"}
        assert len(found["promotions"]) == 12
        assert {old for _, _, old in found["promotions"]} == {None}


def test_records_come_before_what_is_built_on_them(app):
    with app.app_context():
        ids = _world(1)
        award = db.session.get(PerkAward, ids[0])
        promotion, disclosure = (
            db.session.execute(select(Promotion)).scalar_one(),
            db.session.execute(select(Disclosure)).scalar_one(),
        )
        ordered = cascades.in_cascade_order([promotion, award, disclosure])
        assert ordered == [award, promotion, disclosure]


def test_a_category_with_children_deletes_them_first(app):
    with app.app_context():
        member = factories.member(1)
        messages = []
        for kind in ("email", "email", "event"):
            message = OutboxMessage(
                kind=kind, topic="t", subject_id=member.subject_id, payload_enc=b"{}"
            )
            db.session.add(message)
            db.session.flush()
            db.session.add(DeliveryAttempt(outbox_id=message.id, outcome="failed"))
            messages.append(message.id)
        db.session.commit()
        notices = BY_KEY["notices"]
        # The notices category covers the emails only; the event is a ledger record's.
        covered = db.session.execute(
            select(OutboxMessage.id).where(cascades.row_filter(notices))
        ).scalars()
        assert set(covered) == set(messages[:2])
        assert cascades.row_filter(BY_KEY["profile"]) is None
        gone = cascades.delete_children(notices, messages[:2])
        db.session.execute(
            OutboxMessage.__table__.delete().where(OutboxMessage.id.in_(messages[:2]))
        )
        db.session.commit()
        assert gone == 2
        # Without its children first, a message cannot go.
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.execute(
                OutboxMessage.__table__.delete().where(OutboxMessage.id == messages[2])
            )
        left = db.session.execute(select(DeliveryAttempt.outbox_id)).scalars().all()
        assert left == [messages[2]]
        assert db.session.execute(select(func.count(OutboxMessage.id))).scalar_one() == 1


def test_erasing_a_person_deletes_their_messages_attempts_first(app):
    """What erasure does with the declaration: a notice's delivery attempts go just before it,
    in the same batch, and nobody else's."""
    from rights.erasure import erasure  # noqa: PLC0415 - only this test needs the erasure

    with app.app_context():
        subject_ids = [factories.member(n).subject_id for n in (1, 2)]
        for subject_id in subject_ids:
            for _ in range(3):
                message = OutboxMessage(
                    kind="email", topic="t", subject_id=subject_id, payload_enc=b"{}"
                )
                db.session.add(message)
                db.session.flush()
                db.session.add(DeliveryAttempt(outbox_id=message.id, outcome="sent"))
        db.session.commit()
        counts = erasure.erase_rows(subject_ids[0], batch=2)
        assert counts["notices"] == 3
        left = db.session.execute(
            select(OutboxMessage.subject_id).join(
                DeliveryAttempt, DeliveryAttempt.outbox_id == OutboxMessage.id
            )
        ).scalars()
        assert list(left) == [subject_ids[1]] * 3
