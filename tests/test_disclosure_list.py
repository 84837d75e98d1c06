"""The disclosure list (GET /api/v1/disclosures/export): who received what, by brand or
campaign, always reflecting corrections, restrictions and erasures."""

import csv
import io
from datetime import timedelta

from freezegun import freeze_time

from rights.holdings import restrictions
from rights.lifecycle import requests
from storage.clock import utcnow
from storage.db import db
from storage.models import Disclosure, PerkAward
from tests import factories
from tests.helpers import API, assert_error

T0 = "2026-06-01T10:00:00+00:00"


def _world(app, members=3):
    with app.app_context():
        for n in range(1, members + 1):
            factories.member(n)
            factories.award(n, n, status="received")
            from rights.holdings import records

            records.upsert_disclosure(
                {"disclosure_id": f"dl-{n}", "award_id": f"aw-{n}", "status": "disclosed"},
                source="test",
                actor="t",
            )
        db.session.commit()


def _export(client, headers, **params):
    resp = client.get(API + "/disclosures/export", query_string=params, headers=headers)
    body = resp.get_data(as_text=True)
    resp.close()
    return resp, body


def _ids(client, headers, **params):
    resp, _ = _export(client, headers, **params)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [e["disclosure_id"] for e in resp.get_json()["entries"]]


def test_the_list_needs_its_scope(app, client, key_with):
    _world(app, 1)
    assert_error(_export(client, {})[0], 401)
    assert_error(_export(client, key_with("requests:read"))[0], 403)
    assert _ids(client, key_with("disclosures:read")) == ["dl-1"]


def test_json_and_csv_agree_and_carry_who_received_what(app, client, key_with):
    _world(app, 2)
    headers = key_with("disclosures:read")
    resp, _ = _export(client, headers, brand="b-nova")
    entry = resp.get_json()["entries"][0]
    assert entry["member_id"] == "m-1" and entry["handle"] == "@person1"
    assert entry["perk"] == "Nova X1 phone" and entry["brand_id"] == "b-nova"
    assert resp.headers["Cache-Control"] == "no-store"
    resp, body = _export(client, headers, format="csv", campaign="c-launch")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["disclosure_id"] for r in rows] == ["dl-1", "dl-2"]


def test_unknown_scope_and_bad_parameters_are_clear_errors(app, client, key_with):
    _world(app, 1)
    headers = key_with("disclosures:read")
    assert_error(_export(client, headers, brand="b-nope")[0], 422, fields=["brand"])
    assert_error(_export(client, headers, format="xml")[0], 422, fields=["format"])
    assert_error(_export(client, headers, colour="red")[0], 422, fields=["colour"])


def test_only_received_undisputed_entries_are_listed(app, client, key_with):
    _world(app, 4)
    with app.app_context():
        from rights.holdings import records

        factories.award(2, 2, status="ineligible")  # nothing received
        records.upsert_disclosure(
            {"disclosure_id": "dl-3", "award_id": "aw-3", "status": "withdrawn"},
            source="test",
            actor="t",
        )
        db.session.commit()
    assert _ids(client, key_with("disclosures:read")) == ["dl-1", "dl-4"]


def test_restricted_records_vanish_at_once_and_return_only_after_the_notice(app, client, key_with):
    _world(app, 2)
    headers = key_with("disclosures:read")
    with app.app_context():
        req = requests.file(
            type="restriction", member_id="m-1", channel="api", verified=True, actor="t"
        )
        award = db.session.execute(
            db.select(PerkAward).where(PerkAward.external_id == "aw-1")
        ).scalar_one()
        assert restrictions.restrict(award, request=req, reason="contested", actor="t")
        assert not restrictions.restrict(award, request=req, reason="contested", actor="t")
        db.session.commit()
        rid = req.id
    assert _ids(client, headers) == ["dl-2"]  # the disclosure of a contested award too
    with app.app_context():
        ends = restrictions.lift(requests.get(rid), actor="officer:1")
        db.session.commit()
    assert ends is not None
    assert _ids(client, headers) == ["dl-2"]  # the subject is told first (Art. 18(3))
    with freeze_time(ends - timedelta(minutes=1)):
        assert _ids(client, headers) == ["dl-2"]
    with freeze_time(ends + timedelta(seconds=1)):
        assert _ids(client, headers) == ["dl-1", "dl-2"]


def test_erased_members_are_not_listed(app, client, key_with):
    from rights.erasure import erasure

    _world(app, 2)
    with app.app_context():
        req = requests.file(
            type="erasure", member_id="m-2", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        erasure.run(req.id)
        still_kept = db.session.execute(
            db.select(Disclosure).where(Disclosure.external_id == "dl-2")
        ).scalar_one_or_none()
    assert still_kept is not None  # kept under the FTC rule (Art. 17(3)(b))…
    assert _ids(client, key_with("disclosures:read")) == ["dl-1"]  # …but not handed on


def test_a_long_list_streams_in_batches(app, client, key_with):
    from rights.holdings import records
    from rights.recipients import disclosure_list

    with app.app_context():
        factories.member(1)
        for n in range(1, disclosure_list.BATCH * 2 + 7):
            factories.award(n, 1, status="received", at=utcnow())
            records.upsert_disclosure(
                {"disclosure_id": f"dl-{n}", "award_id": f"aw-{n}", "status": "disclosed"},
                source="test",
                actor="t",
            )
        db.session.commit()
    ids = _ids(client, key_with("disclosures:read"))
    assert len(ids) == disclosure_list.BATCH * 2 + 6 and len(set(ids)) == len(ids)
