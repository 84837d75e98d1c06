"""Retention sweeps with a frozen clock: rows expire exactly at their limit (not a second
early), held rows stay (and go once the hold is released), anonymised rows keep no personal
data, rows erasure kept leave at retain_until (and the former member's statement then says
nothing is held), a second sweep changes nothing, a dry run changes nothing, and two sweeps at
once on PostgreSQL remove each row once."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select, update

from retention_policies import sweeps
from rights.erasure import erasure, retention, statements
from rights.holdings import records
from rights.ledger import audit, audit_checkpoints
from rights.lifecycle import requests
from storage.db import db
from storage.models import (
    AuditCheckpoint,
    AuditEvent,
    Feedback,
    FeedbackPicture,
    InfluenceScore,
    InfluenceTopic,
    Member,
    PerkAward,
    RecordHistory,
    RetentionRun,
    RightsRequest,
)
from tests import factories
from tests.conftest import PG_URL

T0 = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
YEAR = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)  # T0 + 12 months
SECOND = timedelta(seconds=1)


def _score(subject_id: str, at: datetime) -> None:
    db.session.add(
        InfluenceScore(
            subject_id=subject_id,
            score=42.0,
            model_version="v1",
            computed_at=at,
            source="scorer",
            actor="t",
            recorded_at=at,
        )
    )


def _scores(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            select(Member.external_id, func.count(InfluenceScore.id))
            .join(InfluenceScore, InfluenceScore.subject_id == Member.subject_id)
            .group_by(Member.external_id)
        ).all()
        return dict(rows)


def _sweep(app, at, **kwargs) -> dict[str, sweeps.Outcome]:
    with freeze_time(at), app.app_context():
        return {o.key: o for o in retention.run(actor="t", **kwargs)}


@pytest.fixture
def two_members(app):
    """m-1 scored at T0, m-2 a day later."""
    with app.app_context():
        one, two = factories.member(1), factories.member(2)
        _score(one.subject_id, T0)
        _score(two.subject_id, T0 + timedelta(days=1))
        db.session.commit()


def test_rows_expire_exactly_at_their_limit(app, two_members):
    """influence_scores: 12 months after the score was computed."""
    early = _sweep(app, YEAR - SECOND)
    assert early["influence_scores"].expired == 0 and _scores(app) == {"m-1": 1, "m-2": 1}
    on_time = _sweep(app, YEAR)
    assert on_time["influence_scores"].expired == 1 and _scores(app) == {"m-2": 1}
    _sweep(app, YEAR + timedelta(days=1))
    assert _scores(app) == {}


def test_days_count_exactly_too(app):
    """profile: 30 days after the account is closed; what hangs off the member goes with it."""
    with app.app_context():
        factories.member(1, closed_at=T0, status="closed")
        factories.member(2)
        db.session.commit()
    _sweep(app, T0 + timedelta(days=30) - SECOND)
    with app.app_context():
        assert db.session.execute(select(func.count(Member.id))).scalar_one() == 2
    outcome = _sweep(app, T0 + timedelta(days=30))["profile"]
    with app.app_context():
        assert outcome.expired == 1
        assert db.session.execute(select(Member.external_id)).scalars().all() == ["m-2"]
        # Its provenance history went with it.
        assert not db.session.execute(
            select(RecordHistory)
            .where(RecordHistory.record_type == "members")
            .where(RecordHistory.record_id.not_in(select(Member.id)))
        ).first()


def test_a_second_sweep_changes_nothing(app, two_members):
    first = _sweep(app, YEAR + timedelta(days=2))
    assert first["influence_scores"].expired == 2
    again = _sweep(app, YEAR + timedelta(days=2))
    assert all(o.expired == 0 and o.retained_removed == 0 for o in again.values())


def test_held_rows_stay_until_the_hold_is_released(app, two_members):
    with app.app_context():
        ref = db.session.execute(select(Member).where(Member.external_id == "m-1")).scalar_one()
        from storage.models import Subject

        subject_ref = db.session.get(Subject, ref.subject_id).ref
        hold = retention.place_hold(
            scope="subject",
            target=subject_ref,
            reason="Litigation 2026-14",
            ends_at=None,
            actor="officer:1",
        )
        db.session.commit()
        hold_id = hold.id
    outcome = _sweep(app, YEAR + timedelta(days=2))["influence_scores"]
    assert outcome.expired == 1 and outcome.held == 1 and _scores(app) == {"m-1": 1}
    # Shown as such: the dry run says what is held.
    preview = _sweep(app, YEAR + timedelta(days=2), dry_run=True)["influence_scores"]
    assert preview.held == 1 and preview.expired == 0
    with app.app_context():
        retention.release_hold(hold_id, actor="officer:2")
        db.session.commit()
        actions = db.session.execute(select(AuditEvent.action)).scalars().all()
        assert "hold.placed" in actions and "hold.released" in actions
    _sweep(app, YEAR + timedelta(days=2))
    assert _scores(app) == {}


def test_holds_by_category_and_campaign_and_their_end(app):
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        db.session.add(
            InfluenceTopic(
                subject_id=db.session.execute(select(Member.subject_id)).scalar_one(),
                topic="phones",
                weight=1.0,
                source="t",
                actor="t",
                recorded_at=T0,
            )
        )
        retention.place_hold(
            scope="category",
            target="influence_topics",
            reason="Regulator's inquiry",
            ends_at=T0 + timedelta(days=800),
            actor="officer:1",
        )
        retention.place_hold(
            scope="campaign",
            target="c-launch",
            reason="Brand dispute",
            ends_at=None,
            actor="officer:1",
        )
        db.session.commit()
    five_years = T0.replace(year=2030)
    outcome = _sweep(app, five_years)
    assert outcome["perk_awards"].held == 1 and outcome["perk_awards"].expired == 0
    # The category hold ended (ends_at passed): the topic went at its own limit.
    assert outcome["influence_topics"].expired == 1
    with app.app_context():
        assert db.session.execute(select(func.count(InfluenceTopic.id))).scalar_one() == 0


def test_bad_holds_say_what_to_fix(app):
    with app.app_context():
        for kwargs, field in (
            ({"scope": "planet", "target": "x"}, "scope"),
            ({"scope": "subject", "target": "sub_nobody"}, "target"),
            ({"scope": "campaign", "target": "c-none"}, "target"),
            ({"scope": "category", "target": "pets"}, "target"),
            ({"scope": "category", "target": "notices", "reason": " "}, "reason"),
            (
                {"scope": "category", "target": "notices", "ends_at": T0},
                "ends_at",
            ),
        ):
            args = {"reason": "why", "ends_at": None, "actor": "t", **kwargs}
            with pytest.raises(Exception) as caught:
                retention.place_hold(**args)
            assert field in caught.value.fields, kwargs


def test_anonymised_rows_keep_no_personal_data(app):
    """perk_awards (5 years after the last status) and requests (3 years after closing) are
    anonymised: no person, no platform id, no history, no encrypted text."""
    with freeze_time(T0), app.app_context():
        member = factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        req = requests.file(
            type="objection",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="t",
            details={"purpose": "profiling", "grounds_text": "My score is about my private life"},
        )
        requests.refuse(req, reason="Compelling grounds: fraud checks", actor="officer:1")
        db.session.commit()
        subject_id, request_id, reference = member.subject_id, req.id, req.reference
    outcome = _sweep(app, T0.replace(year=2030))
    assert outcome["perk_awards"].expired == 1 and outcome["rights_requests"].expired == 1
    with app.app_context():
        award = db.session.execute(select(PerkAward)).scalar_one()
        assert award.subject_id == sweeps.ANONYMOUS_SUBJECT_ID
        assert award.external_id == f"anon-{award.id}" and award.status == "received"
        assert not db.session.execute(
            select(RecordHistory).where(RecordHistory.record_type == "perk_awards")
        ).first()
        request = db.session.get(RightsRequest, request_id)
        assert request.subject_id == sweeps.ANONYMOUS_SUBJECT_ID
        assert request.reference == reference and request.decision == "refused"
        assert request.contact_enc is None and request.details_enc is None
        assert request.decision_reason_enc is None
        # The person's records no longer include them (their account is open: they stay).
        assert not db.session.execute(
            select(PerkAward).where(PerkAward.subject_id == subject_id)
        ).first()
    again = _sweep(app, T0.replace(year=2030))
    assert again["perk_awards"].expired == 0 and again["rights_requests"].expired == 0


def test_anonymised_requests_keep_no_link_to_each_other(app):
    """Two requests of one person linked as asking the same thing (issue 16): once anonymised,
    nothing says they came from one person."""
    with freeze_time(T0), app.app_context():
        factories.member(1)
        first, second = (
            requests.file(
                type="objection",
                member_id="m-1",
                channel="api",
                verified=True,
                actor="t",
                details={"purpose": "profiling", "grounds_text": "My score is private"},
            )
            for _ in range(2)
        )
        second.linked_to_id = first.id
        for req in (first, second):
            requests.refuse(req, reason="Manifestly unfounded", actor="officer:1")
        db.session.commit()
        second_id = second.id
    assert _sweep(app, T0.replace(year=2030))["rights_requests"].expired == 2
    with app.app_context():
        request = db.session.get(RightsRequest, second_id)
        assert request.subject_id == sweeps.ANONYMOUS_SUBJECT_ID
        assert request.linked_to_id is None


def test_retained_rows_leave_at_retain_until_and_the_statement_then_says_nothing(app):
    with freeze_time(T0), app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        records.upsert_disclosure(
            {"disclosure_id": "dl-1", "award_id": "aw-1", "status": "disclosed"},
            source="t",
            actor="t",
        )
        req = requests.file(
            type="erasure", member_id="m-1", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        receipt = erasure.run(req.id)
        key = erasure.reveal_record_key(receipt)
        db.session.commit()
        _, before = statements.for_record_key(key)
        assert not before["holds_nothing"]
        held = {g["category"]: g["records"] for g in before["held"]}
        limit = datetime.fromisoformat(held["disclosures"][0]["retain_until"])
        latest = max(
            datetime.fromisoformat(r["retain_until"]) for rows in held.values() for r in rows
        )
    early = _sweep(app, limit - SECOND)
    assert all(
        early[k].expired + early[k].retained_removed == 0 for k in ("disclosures", "perk_awards")
    )
    on_time = _sweep(app, limit)
    # Listed and erased the same day: their own clock and retain_until run out together.
    assert [
        on_time[k].expired + on_time[k].retained_removed for k in ("disclosures", "perk_awards")
    ] == [1, 1]
    _sweep(app, latest)
    with freeze_time(latest), app.app_context():
        _, after = statements.for_record_key(key)
        assert after["holds_nothing"] and after["held"] == []


def test_an_erasure_never_makes_data_live_longer(app):
    """A disclosure listed at T0 goes five years later even if an erasure a year later kept
    it "until" six years: the earlier of the two."""
    with freeze_time(T0), app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        records.upsert_disclosure(
            {"disclosure_id": "dl-1", "award_id": "aw-1", "status": "disclosed"},
            source="t",
            actor="t",
        )
        db.session.commit()
    with freeze_time(T0.replace(year=2026)), app.app_context():
        req = requests.file(
            type="erasure", member_id="m-1", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        erasure.run(req.id)
    assert _sweep(app, T0.replace(year=2030) - SECOND)["disclosures"].expired == 0
    assert _sweep(app, T0.replace(year=2030))["disclosures"].expired == 1


def test_records_under_a_restriction_in_force_are_not_swept(app):
    """Art. 18: a restricted record is stored, not used, and not deleted."""
    with freeze_time(T0), app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        req = requests.file(
            type="restriction",
            member_id="m-1",
            channel="api",
            verified=True,
            actor="t",
            details={"grounds": "legal_claims", "records": ["aw-1"]},
        )
        db.session.commit()
        request_id = req.id
    outcome = _sweep(app, T0.replace(year=2031))
    assert outcome["perk_awards"].held == 1 and outcome["perk_awards"].expired == 0
    assert outcome["rights_requests"].expired == 0
    with app.app_context():
        assert db.session.get(RightsRequest, request_id).subject_id != sweeps.ANONYMOUS_SUBJECT_ID


def test_a_campaign_hold_covers_pictures_and_nothing_without_a_campaign(app):
    """The campaign is found through each row's own award (two pictures, two campaigns), and a
    row with no campaign is not held by it."""
    with freeze_time(T0), app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received", at=T0)
        factories.award(2, 1, status="received", at=T0, campaign_id="c-other", perk_id="p-2")
        awards = db.session.execute(select(PerkAward).order_by(PerkAward.id)).scalars().all()
        for award in [*awards, None]:  # the last: feedback about no award (no campaign)
            feedback = Feedback(
                subject_id=awards[0].subject_id,
                award_id=award.id if award else None,
                rating=5,
                source="t",
                actor="t",
                recorded_at=T0,
            )
            db.session.add(feedback)
            db.session.flush()
            db.session.add(
                FeedbackPicture(
                    subject_id=feedback.subject_id,
                    feedback_id=feedback.id,
                    media_type="image/png",
                    content_enc=b"x",
                    source="t",
                    actor="t",
                    recorded_at=T0,
                )
            )
        db.session.commit()
        retention.place_hold(
            scope="campaign", target="c-launch", reason="dispute", ends_at=None, actor="t"
        )
        db.session.commit()
    outcome = _sweep(app, T0.replace(year=2031))
    assert outcome["perk_awards"].held == 1 and outcome["perk_awards"].expired == 1
    # One picture (and its feedback) held through its award's campaign; the other campaign's
    # and the one about no award went.
    assert (outcome["feedback_pictures"].held, outcome["feedback_pictures"].expired) == (1, 2)
    assert outcome["feedback"].expired == 2  # the held one stays (with its held picture)
    with app.app_context():
        assert db.session.execute(select(func.count(Feedback.id))).scalar_one() == 1


def test_a_dry_run_counts_and_dates_and_changes_nothing(app, two_members):
    preview = _sweep(app, YEAR + timedelta(days=2), dry_run=True)["influence_scores"]
    assert preview.expired == 2 and preview.oldest == T0
    assert _scores(app) == {"m-1": 1, "m-2": 1}
    with app.app_context():
        runs = db.session.execute(select(RetentionRun)).scalars().all()
        assert runs and all(r.dry_run for r in runs)
        assert all(
            set(r.counts) <= {"expired", "retained_removed", "held", "action", "oldest"}
            for r in runs
        )


def test_each_sweep_is_recorded_and_audited_with_counts_only(app, two_members):
    _sweep(app, YEAR + timedelta(days=2))
    with app.app_context():
        run = db.session.execute(
            select(RetentionRun).where(RetentionRun.policy == "influence_scores")
        ).scalar_one()
        assert run.counts["expired"] == 2 and run.finished_at >= run.started_at
        entry = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "retention.swept")
        ).scalar_one()
        assert entry.details == {"influence_scores": {"expired": 2, "retained": 0, "held": 0}}


def test_the_worker_sweeps_on_its_schedule(app_factory):
    app = app_factory(RETENTION_SWEEP_HOURS=24)
    with freeze_time(T0), app.app_context():
        assert retention.run_if_due() is True
        assert retention.run_if_due() is False
    with freeze_time(T0 + timedelta(hours=25)), app.app_context():
        assert retention.run_if_due() is True


def test_the_cli_sweeps_and_says_counts_not_data(app, runner, two_members):
    with freeze_time(YEAR + timedelta(days=2)):
        dry = runner.invoke(args=["retention", "sweep", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "influence_scores" in dry.output and "2" in dry.output
        assert _scores(app) == {"m-1": 1, "m-2": 1}
        done = runner.invoke(args=["retention", "sweep"])
        assert done.exit_code == 0, done.output
    assert _scores(app) == {}
    assert "Person 1" not in done.output and "person1@" not in done.output
    assert runner.invoke(args=["retention", "sweep", "--batch", "0"]).exit_code == 2


@pytest.mark.skipif(not PG_URL, reason="concurrent sweeps need PostgreSQL (SQLite has one writer)")
def test_two_sweeps_at_once_on_postgresql_remove_each_row_once(app):
    n = 3000
    with app.app_context():
        member = factories.member(1)
        db.session.commit()
        db.session.execute(
            InfluenceTopic.__table__.insert(),
            [
                {
                    "subject_id": member.subject_id,
                    "topic": f"t{i}",
                    "weight": 1.0,
                    "source": "t",
                    "actor": "t",
                    "recorded_at": T0,
                }
                for i in range(n)
            ],
        )
        db.session.commit()
    results, errors = [], []
    barrier = threading.Barrier(2)

    def sweep():
        try:
            with app.app_context():
                barrier.wait()
                (outcome,) = sweeps.sweep(only="influence_topics", batch=100)
                results.append(outcome.expired)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with freeze_time(T0.replace(year=2030)):  # one frozen clock for both threads
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert len(results) == 2 and sum(results) == n, results
    with app.app_context():
        assert db.session.execute(select(func.count(InfluenceTopic.id))).scalar_one() == 0


def _entries(n: int, at: datetime, checkpoint_every: int = 10) -> None:
    with freeze_time(at):
        for i in range(n):
            audit.record("t", "test.step", details={"i": i})
            db.session.flush()
            if (i + 1) % checkpoint_every == 0:
                audit_checkpoints.write()
        db.session.commit()


def test_the_audit_trail_is_pruned_up_to_a_signed_checkpoint_and_still_verifies(app):
    with app.app_context():
        _entries(25, T0)  # checkpoints after entries 10 and 20
        _entries(15, T0.replace(year=2031))  # younger than six years at the sweep
        first_young = db.session.execute(
            select(func.min(AuditEvent.id)).where(AuditEvent.at > T0)
        ).scalar_one()
        second = db.session.execute(
            select(AuditCheckpoint.last_id).order_by(AuditCheckpoint.id).offset(1).limit(1)
        ).scalar_one()
        up_to_second = db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.id <= second)
        ).scalar_one()
    outcome = _sweep(app, T0.replace(year=2031, month=6))["audit_events"]
    # Entries up to the last checkpoint among the old ones (after the 20th) go; the five after
    # it wait for the next checkpoint that is old enough: the chain is only cut at a signature.
    assert outcome.expired == up_to_second
    with app.app_context():
        report = audit_checkpoints.verify()
        assert report.ok, (report.broken_ids, report.problems)
        left = db.session.execute(select(func.min(AuditEvent.id))).scalar_one()
        assert left < first_young  # the five old entries after the anchor are still there
        assert audit_checkpoints.anchor() is not None
        # New entries and checkpoints after the prune keep verifying...
        _entries(12, T0.replace(year=2031, month=7))
        assert audit_checkpoints.verify().ok
        # ...and tampering after the anchor is still caught.
        victim = db.session.execute(select(func.max(AuditEvent.id))).scalar_one() - 3
        db.session.execute(delete(AuditEvent).where(AuditEvent.id == victim))
        db.session.commit()
        assert not audit_checkpoints.verify().ok
    again = _sweep(app, T0.replace(year=2031, month=6), dry_run=True)["audit_events"]
    assert again.expired == 0


def test_a_cut_prefix_without_the_signed_anchor_is_still_caught(app):
    with app.app_context():
        _entries(25, T0)
        db.session.execute(delete(AuditEvent).where(AuditEvent.id <= 20))
        db.session.commit()
        assert not audit_checkpoints.verify().ok


def test_backdated_entries_do_not_get_recent_audit_entries_pruned(app):
    """Someone able to write to the main database backdates recent entries: the prune goes by
    when the key store says each checkpoint was signed, so nothing recent goes."""
    recent = T0.replace(year=2031)
    with app.app_context():
        _entries(25, recent)
        db.session.execute(update(AuditEvent).values(at=T0.replace(year=2020)))
        db.session.commit()
    assert _sweep(app, recent + timedelta(days=10))["audit_events"].expired == 0


def test_a_tampered_stretch_is_not_pruned_away(app):
    """An edited old entry is evidence: the prune refuses, and verification still fails."""
    with app.app_context():
        _entries(25, T0)
        db.session.execute(update(AuditEvent).where(AuditEvent.id == 5).values(actor="someone"))
        db.session.commit()
    assert _sweep(app, T0.replace(year=2032))["audit_events"].expired == 0
    with app.app_context():
        assert not audit_checkpoints.verify().ok
        assert db.session.execute(select(AuditEvent).where(AuditEvent.id == 5)).first()


def test_an_audit_trail_pruned_to_nothing_chains_on_from_its_anchor(app):
    with app.app_context():
        _entries(20, T0)  # the last entry is a checkpoint's: everything can go
    assert _sweep(app, T0.replace(year=2032))["audit_events"].expired > 0
    with freeze_time(T0.replace(year=2032)), app.app_context():
        audit.record("t", "test.after")
        db.session.commit()
        assert audit_checkpoints.verify().ok


def test_a_request_nobody_verified_is_kept_no_longer_than_an_answered_one(app):
    """Never verified, it never closes: its clock starts when it was received."""
    with freeze_time(T0), app.app_context():
        req = requests.file(type="access", email="typo@example.org", channel="web", actor="subject")
        db.session.commit()
        request_id = req.id
        assert req.status == "awaiting_verification" and req.contact_enc is not None
    three_years = T0.replace(year=2028)
    assert _sweep(app, three_years - SECOND)["rights_requests"].expired == 0
    assert _sweep(app, three_years)["rights_requests"].expired == 1
    with app.app_context():
        request = db.session.get(RightsRequest, request_id)
        assert request.contact_enc is None and request.subject_id == sweeps.ANONYMOUS_SUBJECT_ID
