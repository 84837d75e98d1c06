"""One truth about recipients and transfers (Art. 15(1)(c), 15(2), 30(1)(d)-(e)): the member's
report and the record of processing read the same declaration (storage/recipients.py), so a
recipient outside the EEA is never "none" in one and "under standard contractual clauses" in
the other."""

import json

from rights.access import access
from rights.erasure import retention
from rights.lifecycle import requests
from storage import recipients
from storage.datamap import CATEGORIES
from storage.db import db
from tests import factories


def test_every_category_names_declared_recipients():
    for cat in CATEGORIES:
        for to in cat.recipients:
            assert to.key in recipients.RECIPIENTS, (cat.key, to.key)
            assert to.label.startswith(recipients.RECIPIENTS[to.key].name)


def test_the_record_of_processing_states_each_activitys_transfers_from_its_recipients(app):
    with app.app_context():
        record = retention.record()
    by_key = {a["category"]: a for a in record["activities"]}
    abroad = {k for k, r in recipients.RECIPIENTS.items() if r.transfer != recipients.IN_EEA}
    assert abroad, "the demo platform's brands may be outside the EEA"
    for cat in CATEGORIES:
        activity = by_key[cat.key]
        leaving = [to.recipient for to in cat.recipients if to.key in abroad]
        if leaving:
            # The activity names each recipient that may take the data abroad, and the basis.
            for r in leaving:
                assert r.name in activity["transfers"], (cat.key, activity["transfers"])
                assert "standard contractual clauses" in activity["transfers"]
        else:
            assert activity["transfers"] == "None outside the EEA", cat.key
        assert activity["recipients"] == recipients.labels(cat.recipients)


def test_the_members_report_names_the_same_transfers_as_the_record(app):
    with app.app_context():
        factories.member(1)
        req = requests.file(
            type="access", email="person1@example.org", channel="api", verified=True, actor="t"
        )
        db.session.commit()
        report = json.loads("".join(access.stream_json(requests.get(req.id))))
        record = retention.record()
    in_report = {t["recipient"] for t in report["transfers"]}
    in_record = {
        r.name
        for a in record["activities"]
        for r in recipients.RECIPIENTS.values()
        if r.name in a["transfers"]
    }
    assert in_report == in_record
    assert all("standard contractual clauses" in t["basis"] for t in report["transfers"])
