"""Retention on the dashboard: what a sweep would do now, legal holds placed and released by
officers (the form says what to fix), the runs, and the record of processing (Art. 30) as a
page, JSON and CSV — generated from the data map and the policy files."""

import csv
import io
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select

from retention_policies import policies
from rights.erasure import retention
from storage.clock import utcnow
from storage.datamap import CATEGORIES, LEDGER_RECORDS
from storage.db import db
from storage.models import AuditEvent, InfluenceScore, LegalHold, Subject
from tests import factories


def _member_ref(app) -> str:
    with app.app_context():
        member = factories.member(1)
        db.session.add(
            InfluenceScore(
                subject_id=member.subject_id,
                score=1.0,
                model_version="v1",
                computed_at=utcnow() - timedelta(days=400),
                source="t",
                actor="t",
            )
        )
        db.session.commit()
        return db.session.get(Subject, member.subject_id).ref


def test_an_officer_places_and_releases_a_hold(app, login_as):
    ref = _member_ref(app)
    officer = login_as("officer")
    page = officer.get("/dashboard/retention").get_data(as_text=True)
    assert "influence_scores" in page and "No legal holds." in page
    resp = officer.post(
        "/dashboard/retention/holds",
        data={"scope": "subject", "target": ref, "reason": "Case 2026-14", "ends_at": ""},
    )
    assert resp.status_code == 303
    page = officer.get("/dashboard/retention").get_data(as_text=True)
    assert "in force" in page and ref in page and "Case 2026-14" in page
    with app.app_context():
        hold_id = db.session.execute(select(LegalHold.id)).scalar_one()
        preview = {r["key"]: r["due"] for r in retention.overview()}
        assert preview["influence_scores"].held == 1 and preview["influence_scores"].expired == 0
    assert officer.post(f"/dashboard/retention/holds/{hold_id}/release").status_code == 303
    with app.app_context():
        assert db.session.get(LegalHold, hold_id).released_at is not None
        actions = set(db.session.execute(select(AuditEvent.action)).scalars())
        assert {"hold.placed", "hold.released"} <= actions
    again = officer.post(f"/dashboard/retention/holds/{hold_id}/release", follow_redirects=True)
    assert "already released" in again.get_data(as_text=True)
    assert officer.post("/dashboard/retention/holds/999/release").status_code == 404


def test_a_bad_hold_gets_the_form_back_saying_what_to_fix(app, login_as):
    officer = login_as("officer")
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    for data, message in (
        ({"scope": "subject", "target": "sub_nobody", "reason": "x"}, "no subject with this"),
        ({"scope": "campaign", "target": "c-none", "reason": "x"}, "no campaign with this id"),
        ({"scope": "category", "target": "pets", "reason": "x"}, "no such category"),
        ({"scope": "category", "target": "notices", "reason": ""}, "This field is required."),
        (
            {"scope": "category", "target": "notices", "reason": "x", "ends_at": yesterday},
            "must be in the future",
        ),
        ({"scope": "category", "target": "notices", "reason": "x", "ends_at": "soon"}, "date"),
        ({"scope": "category", "target": "notices", "reason": "a\x00b"}, "no NUL characters"),
    ):
        resp = officer.post("/dashboard/retention/holds", data={"ends_at": "", **data})
        assert resp.status_code == 422, data
        assert message in resp.get_data(as_text=True), data
    with app.app_context():
        assert db.session.execute(select(LegalHold)).first() is None


def test_auditors_read_retention_but_place_no_hold(app, login_as):
    auditor = login_as("auditor")
    page = auditor.get("/dashboard/retention").get_data(as_text=True)
    assert "Policies" in page and "Place the hold" not in page
    assert auditor.post("/dashboard/retention/holds", data={}).status_code == 403


def test_the_runs_show_on_the_page(app, login_as):
    _member_ref(app)
    with app.app_context():
        retention.run(actor="t")
    page = login_as("auditor").get("/dashboard/retention").get_data(as_text=True)
    assert "Recent sweeps" in page and "No sweep yet." not in page


def test_the_record_of_processing_comes_from_the_data_map_and_the_policies(app, login_as):
    auditor = login_as("auditor")
    page = auditor.get("/dashboard/record-of-processing").get_data(as_text=True)
    for cat in CATEGORIES:
        assert cat.title in page
    assert "Security measures" in page and app.config["DPO_CONTACT"] in page
    record = auditor.get("/dashboard/record-of-processing.json").get_json()
    by_key = {a["category"]: a for a in record["activities"]}
    assert set(by_key) == {c.key for c in CATEGORIES}
    scores = policies()["influence_scores"]
    assert by_key["influence_scores"]["erasure_time_limit"] == (
        f"delete {scores.period} after {scores.starts}"
    )
    assert "kept 5 years" in by_key["perk_awards"]["erasure_time_limit"]
    assert by_key["influence_scores"]["profiling"]
    assert {r["record"] for r in record["own_records"]} == {r.key for r in LEDGER_RECORDS}
    assert record["controller"]["name"] == app.config["CONTROLLER_NAME"]
    resp = auditor.get("/dashboard/record-of-processing.csv")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:2] == ["section", "category"]
    sections = [r[0] for r in rows[1:]]
    assert sections.count("processing activity") == len(CATEGORIES)
    assert sections.count("Lethe's own records") == len(LEDGER_RECORDS)
    assert {"controller", "data protection officer", "security measure"} <= set(sections)
    assert "attachment" in resp.headers["Content-Disposition"]


def test_a_hold_until_a_day_lasts_through_that_day(app, login_as):
    officer = login_as("officer")
    day = (utcnow() + timedelta(days=2)).date()
    resp = officer.post(
        "/dashboard/retention/holds",
        data={"scope": "category", "target": "notices", "reason": "x", "ends_at": day.isoformat()},
    )
    assert resp.status_code == 303
    with app.app_context():
        hold = db.session.execute(select(LegalHold)).scalar_one()
        with freeze_time(f"{day.isoformat()}T23:59:00Z"):
            assert retention.in_force(hold)
        with freeze_time(f"{(day + timedelta(days=1)).isoformat()}T00:00:01Z"):
            assert not retention.in_force(hold)
