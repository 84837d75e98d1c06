"""The audit trail detects edits, insertions, deletions, reorderings and a cut tail."""

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from rights.ledger import audit, audit_checkpoints
from rights.lifecycle import requests
from storage.db import db
from storage.models import AuditCheckpoint, AuditEvent, Subject
from tests.helpers import deliver


@pytest.fixture
def trail(app):
    """Some real activity, with a signed checkpoint at its end."""
    with app.app_context():
        for n in range(6):
            requests.file(type="access", email=f"a{n}@example.org", channel="web", actor="subject")
        db.session.commit()
        assert audit_checkpoints.write() is not None
        db.session.commit()
        ids = list(db.session.execute(select(AuditEvent.id).order_by(AuditEvent.id)).scalars())
    return ids


def _verify(app):
    with app.app_context():
        return audit_checkpoints.verify()


def test_intact_trail_verifies(app, trail, runner):
    report = _verify(app)
    assert report.ok and report.entries == len(trail) and report.checkpoints == 1
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "audit trail intact" in result.output


def test_edited_entry_is_detected(app, trail, runner):
    with app.app_context():
        db.session.execute(
            update(AuditEvent).where(AuditEvent.id == trail[2]).values(actor="someone-else")
        )
        db.session.commit()
    assert _verify(app).broken_ids == [trail[2]]
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"chain broken at entries: {trail[2]}" in result.output


def test_inserted_entry_is_detected(app, trail):
    with app.app_context():
        last = db.session.get(AuditEvent, trail[-1])
        forged = AuditEvent(
            at=last.at,
            actor="forger",
            action="request.completed",
            details={},
            prev_hash=last.hash,
            hash="f" * 64,
        )
        db.session.add(forged)
        db.session.commit()
        forged_id = forged.id
    assert _verify(app).broken_ids == [forged_id]


def test_deleted_entry_is_detected(app, trail):
    with app.app_context():
        db.session.execute(AuditEvent.__table__.delete().where(AuditEvent.id == trail[3]))
        db.session.commit()
    report = _verify(app)
    assert report.broken_ids == [trail[4]]
    assert any("entries expected" in p for p in report.problems)


def test_reordered_entries_are_detected(app, trail):
    with app.app_context():
        a, b = (db.session.get(AuditEvent, i) for i in trail[1:3])
        cols = ("at", "actor", "action", "subject_ref", "target", "details", "prev_hash", "hash")
        values_a = {c: getattr(a, c) for c in cols}
        values_b = {c: getattr(b, c) for c in cols}
        db.session.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(values_b))
        db.session.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(values_a))
        db.session.commit()
    assert _verify(app).broken_ids


def test_cut_tail_is_caught_by_the_checkpoint(app, trail):
    with app.app_context():
        db.session.execute(AuditEvent.__table__.delete().where(AuditEvent.id >= trail[-3]))
        db.session.commit()
        assert audit.verify_chain() == []  # what is left is still a valid chain...
    report = _verify(app)
    assert not report.ok  # ...but not what was signed
    assert any("is gone (the chain was cut)" in p for p in report.problems)


def test_forged_checkpoint_is_detected(app, trail):
    with app.app_context():
        db.session.execute(update(AuditCheckpoint).values(entries=3))
        db.session.commit()
    assert any("altered" in p for p in _verify(app).problems)


def test_worker_signs_checkpoints_as_entries_accumulate(app, monkeypatch):
    monkeypatch.setattr(audit_checkpoints.maybe_write, "__defaults__", (5,))
    with app.app_context():
        for n in range(3):
            requests.file(type="access", email=f"w{n}@example.org", channel="web", actor="subject")
        db.session.commit()
    deliver(app)
    with app.app_context():
        cps = db.session.execute(select(AuditCheckpoint)).scalars().all()
        assert len(cps) == 1
        last = db.session.execute(
            select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)
        ).scalar_one()
        assert cps[0].last_id <= last
    assert _verify(app).ok


# Entries are chained at commit, in one place (issue 17): a transaction notes them and writes
# them when it commits, under the chain's lock, reading the chain's tail once.


def _actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_entries_are_written_at_commit_in_the_order_they_were_noted(app):
    with app.app_context():
        for n in range(3):
            audit.record("t", f"test.{n}")
        db.session.flush()
        assert len(audit.pending()) == 3  # a flush writes none of them: the commit does
        db.session.commit()
    with app.app_context():
        audit.record("t", "test.a")
        audit.record("t", "test.b")
        assert [e.action for e in audit.pending()] == ["test.a", "test.b"]
        db.session.commit()
        assert audit.pending() == []
    assert _actions(app) == ["test.0", "test.1", "test.2", "test.a", "test.b"]
    with app.app_context():
        assert audit_checkpoints.verify().ok


def test_a_rolled_back_transaction_writes_none_of_its_entries(app):
    with app.app_context():
        audit.record("t", "test.kept")
        db.session.commit()
        audit.record("t", "test.gone")
        db.session.rollback()
        audit.record("t", "test.after")
        db.session.commit()
    assert _actions(app) == ["test.kept", "test.after"]
    with app.app_context():
        assert audit_checkpoints.verify().ok


def test_a_rolled_back_savepoint_takes_only_its_own_entries(app):
    with app.app_context():
        audit.record("t", "test.before")
        savepoint = db.session.begin_nested()
        audit.record("t", "test.inside")
        savepoint.rollback()
        with db.session.begin_nested():
            audit.record("t", "test.released")
        db.session.commit()
    assert _actions(app) == ["test.before", "test.released"]


def test_one_tail_read_and_one_lock_per_transaction_whatever_its_entries(app):
    from sqlalchemy import event

    with app.app_context():
        audit.record("t", "test.first")
        db.session.commit()
        statements: list[str] = []

        def seen(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            for n in range(5):
                audit.record("t", f"test.{n}")
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
    tail_reads = [s for s in statements if s.startswith("SELECT audit_events.hash")]
    assert len(tail_reads) == 1
    assert len([s for s in statements if s.startswith("INSERT INTO audit_events")]) == 5
    with app.app_context():
        assert audit_checkpoints.verify().ok


def test_a_statement_on_the_trail_sees_the_entries_noted_before_it(app):
    """A checkpoint signed in the transaction that noted entries covers them."""
    with app.app_context():
        audit.record("t", "test.one")
        audit.record("t", "test.two")
        checkpoint = audit_checkpoints.write()
        db.session.commit()
        assert checkpoint is not None and checkpoint.entries == 2
        assert audit_checkpoints.verify().ok


def test_a_released_savepoint_inside_a_rolled_back_one_writes_nothing(app):
    with app.app_context():
        audit.record("t", "test.before")
        outer = db.session.begin_nested()
        with db.session.begin_nested():
            audit.record("t", "test.inner")  # tagged with the inner savepoint
        outer.rollback()  # the inner's work went with the outer
        db.session.commit()
    assert _actions(app) == ["test.before"]


def test_an_open_savepoint_inside_a_rolled_back_one_writes_nothing(app):
    with app.app_context():
        outer = db.session.begin_nested()
        db.session.begin_nested()
        audit.record("t", "test.inner")
        outer.rollback()
        db.session.commit()
    assert _actions(app) == []


def test_a_failed_flush_in_a_savepoint_keeps_the_entries_outside_it(app):
    """subjects.get_or_create's pattern: an IntegrityError in a savepoint, caught, the
    transaction carries on and commits."""
    with app.app_context():
        db.session.add(Subject(ref="sub_dup0000000000000000", email_index="x" * 64))
        db.session.commit()
        audit.record("t", "test.before_savepoint")
        try:
            with db.session.begin_nested():
                db.session.add(Subject(ref="sub_dup0000000000000000", email_index="y" * 64))
                db.session.flush()
        except IntegrityError:
            pass
        audit.record("t", "test.after_savepoint")
        db.session.commit()
    assert _actions(app) == ["test.before_savepoint", "test.after_savepoint"]


def test_a_commit_with_a_savepoint_open_writes_both(app):
    with app.app_context():
        audit.record("t", "test.a")
        db.session.begin_nested()
        audit.record("t", "test.b")
        db.session.commit()
        assert audit.pending() == []
    assert _actions(app) == ["test.a", "test.b"]
    with app.app_context():
        assert audit_checkpoints.verify().ok


def test_a_closed_session_forgets_what_it_noted(app):
    with app.app_context():
        audit.record("t", "test.abandoned")
        db.session.close()  # no rollback event
        audit.record("t", "test.next")
        db.session.commit()
    assert _actions(app) == ["test.next"]


def test_an_aliased_select_on_the_trail_sees_noted_entries(app):
    with app.app_context():
        audit.record("t", "test.one")
        a = aliased(AuditEvent)
        n = db.session.execute(select(func.count(a.id))).scalar_one()
        db.session.rollback()
    assert n == 1


def test_a_subquery_on_the_trail_sees_noted_entries(app):
    with app.app_context():
        audit.record("t", "test.one")
        n = db.session.execute(
            select(func.count()).select_from(select(AuditEvent.id).subquery())
        ).scalar_one()
        db.session.rollback()
    assert n == 1


def test_an_orm_delete_on_the_trail_chains_noted_entries_first(app):
    """A prune in the transaction that noted entries: they are in the table before it runs."""
    from sqlalchemy import delete

    with app.app_context():
        audit.record("t", "test.one")
        db.session.execute(delete(AuditEvent).where(AuditEvent.action == "test.none"))
        assert audit.pending() == []
        db.session.commit()
    assert _actions(app) == ["test.one"]


def test_a_checkpoint_signed_while_another_entry_commits_still_verifies(app):
    """Found by CI (the browser test's worker signed a checkpoint while an officer's request
    committed an entry): the checkpoint read the chain's last entry, then counted the entries
    in a second statement that saw one more, and claimed 238 entries up to entry 237. It
    counts the entries up to the one it names."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from storage.clock import utcnow

    with app.app_context():
        for n in range(3):
            requests.file(type="access", email=f"a{n}@example.org", channel="web", actor="subject")
        db.session.commit()
        engine = db.engine
        done = []

        def commit_one_more(conn, cursor, statement, params, context, many):
            # Between the checkpoint's reads, another transaction commits an entry.
            if not done and "count(audit_events.id)" in statement:
                done.append(True)
                with Session(bind=engine) as other:
                    other.add(
                        AuditEvent(
                            at=utcnow(),
                            actor="someone",
                            action="other.thing",
                            details={},
                            prev_hash="x",
                            hash="y",
                        )
                    )
                    other.commit()

        event.listen(engine, "before_cursor_execute", commit_one_more)
        try:
            checkpoint = audit_checkpoints.write()
            db.session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", commit_one_more)
        assert done
        up_to = db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.id <= checkpoint.last_id)
        ).scalar_one()
        assert checkpoint.entries == up_to
