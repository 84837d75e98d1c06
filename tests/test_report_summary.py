"""A report a person can read (issue 15): the access report, and each request's page, open
with a summary in plain words — what we hold (by category, with counts), who we gave it to,
what is held back or being corrected, and how each troubled record got that way, one sentence
per change — and every record reads in words, named by what it is.

On the demo's story: Sam Rivera was recorded as having received a Nova X1 phone he never got
(a fulfilment sync job marked it received; nothing shipped)."""

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from demo import loader as demo
from rights.access import access, summary
from rights.lifecycle import requests
from storage.clock import utcnow
from storage.db import db
from storage.models import PerkAward, RecordHistory, RightsRequest, Subject
from storage.recipients import RECIPIENTS
from tests import factories

SYNC = (
    "our fulfilment sync (job 0817) marked your Nova X1 phone as received. "
    "No shipment was recorded."
)


# Stored codes and internal numbers a person must never meet on the page.
def date_words(at) -> str:
    return f"{at.day} {at:%B %Y}"


RAW = ("not_received", "status_at", "perk id", "perk_id", "Record 1", "sync-job-0817", "officer:")


def _text(page: str) -> str:
    """What a person reads on a page: its text, without markup, spaces made single."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def _sync_day(app) -> str:
    """The day the demo's sync job wrote Sam's award, as a person writes it."""
    with app.app_context():
        at = db.session.scalar(
            select(RecordHistory.changed_at)
            .join(PerkAward, PerkAward.id == RecordHistory.record_id)
            .where(
                RecordHistory.record_type == "perk_awards",
                PerkAward.external_id == "aw-0001-nova",
                RecordHistory.actor == "sync-job-0817",
            )
        )
    return date_words(at)


def _story_request(app) -> tuple[str, str]:
    """Sam's open correction request (the demo's): (id, reference)."""
    with app.app_context():
        req = db.session.scalars(
            select(RightsRequest).where(
                RightsRequest.type == "rectification", RightsRequest.status == "open"
            )
        ).one()
        return req.id, req.reference


def _access(app, client) -> tuple[str, str]:
    """Sam's access request, answered; this browser may see it (as after its emailed link)."""
    with app.app_context():
        req = requests.file(
            type="access", email=demo.STORY_EMAIL, channel="api", verified=True, actor="test"
        )
        db.session.commit()
        rid, reference = req.id, req.reference
    _grant(client, rid)
    return rid, reference


def _grant(client, *request_ids) -> None:
    with client.session_transaction() as session:
        grants = dict(session.get("grants", {}))
        for rid in request_ids:
            grants[rid] = (utcnow() + timedelta(hours=2)).isoformat()
        session["grants"] = grants


def _report(app, rid) -> dict:
    with app.app_context():
        return json.loads("".join(access.stream_json(requests.get(rid))))


def _sentences(s: dict) -> list[str]:
    return [sentence for part in s["in_words"] for sentence in part["sentences"]]


@pytest.fixture
def story(app):
    with app.app_context():
        demo.load(extra_members=20)
        db.session.commit()
    return app


def test_sams_report_tells_in_words_how_the_phone_came_to_be_received(story, client):
    rid, reference = _access(story, client)
    said = f"On {_sync_day(story)} {SYNC}"
    report = _report(story, rid)
    s = report["summary"]
    assert said in _sentences(s)
    (group,) = s["troubled"]
    assert (group["category"], group["reference"]) == ("perk_awards", "aw-0001-nova")
    assert group["what"] == "your Nova X1 phone from Nova Mobile"
    sync = [c for c in group["changes"] if c["troubling"]]
    assert [(c["by"], c["sentence"]) for c in sync] == [("our fulfilment sync (job 0817)", said)]
    # The story is the award's, with what was built on it: the list entry, the promotion and
    # the request to rate the phone, each named by what it is.
    told = " ".join(c["sentence"] for c in group["changes"])
    assert "marked your Nova X1 phone as not eligible" in told
    assert "put your Nova X1 phone on the disclosure list" in told
    assert "asked you to rate your Nova X1 phone" in told

    page = client.get(f"/requests/{reference}/report")
    assert page.status_code == 200
    text = _text(page.get_data(as_text=True))
    assert said in text
    assert text.index(said) < text.index("Your records")  # in the summary, at the top
    for raw in RAW:
        assert raw not in text, raw


def test_the_summary_counts_each_kind_of_record_and_names_who_received_it(story, client):
    rid, reference = _access(story, client)
    s = _report(story, rid)["summary"]
    held = {h["category"]: (h["count"], h["words"]) for h in s["held"]}
    assert held["perk_awards"] == (1, "1 perk award")
    assert held["consents"] == (2, "2 consents")
    assert held["influence_topics"] == (2, "2 topics you are said to influence")
    assert held["rights_requests"] == (2, "2 requests to us")
    assert "feedback_pictures" not in held  # none held: not counted as "0"
    assert s["total"] == sum(count for count, _ in held.values())
    recipients = {r["key"]: r for r in s["recipients"]}
    assert recipients["brand"]["name"] == RECIPIENTS["brand"].name
    assert recipients["brand"]["brands"] == ["Nova Mobile"]
    assert "your perk award" in recipients["brand"]["what"]
    assert {"fulfilment", "list_consumers", "regulators", "ad_system"} <= set(recipients)

    text = _text(client.get(f"/requests/{reference}/report").get_data(as_text=True))
    top = text[: text.index("Your records")]
    assert "1 perk award" in top and "2 consents" in top
    assert f"{RECIPIENTS['brand'].name} (Nova Mobile)" in top
    assert RECIPIENTS["fulfilment"].name in top


def test_what_is_held_back_while_his_correction_is_decided(story, client):
    rid, reference = _access(story, client)
    _, story_ref = _story_request(story)
    s = _report(story, rid)["summary"]
    (correcting,) = s["being_corrected"]
    assert correcting["request"] == story_ref
    (hold,) = s["held_back"]
    assert (hold["request"], hold["reason"]) == (story_ref, "contested")
    assert [r["what"] for r in hold["records"]] == [
        "your Nova X1 phone from Nova Mobile",
        "your entry on the disclosure list for your Nova X1 phone",
        "the promotion shown to your friends about your Nova X1 phone",
        "the request to rate your Nova X1 phone",
    ]
    text = _text(client.get(f"/requests/{reference}/report").get_data(as_text=True))
    assert f"We are deciding your correction request {story_ref}" in text
    assert "Until then we hold back your Nova X1 phone from Nova Mobile" in text


def test_each_record_reads_in_words_data_first_and_legal_detail_folded(story, client):
    _, reference = _access(story, client)
    page = client.get(f"/requests/{reference}/report").get_data(as_text=True)
    # The legal detail of each kind of data is folded under it, after its records.
    section = page[page.index('id="cat-perk_awards"') :]
    section = section[: section.index("</section>")]
    assert section.index("Your Nova X1 phone from Nova Mobile") < section.index(
        '<details class="legal">'
    )
    assert section.index('<details class="legal">') < section.index("Legal basis")
    folded = re.findall(r'<details class="legal">.*?</details>', page, flags=re.S)
    assert page.count("<dt>Legal basis</dt>") == sum(
        f.count("<dt>Legal basis</dt>") for f in folded
    )
    text = _text(page)
    for named in (
        "Your entry on the disclosure list for your Nova X1 phone",
        "The promotion shown to your friends about your Nova X1 phone",
        "Your consent to the use of your name and picture in promotions",
        "Reference aw-0001-nova",
    ):
        assert named in text, named
    # No empty values, no label left hanging without one.
    assert not re.search(r"<dd>\s*(—)?\s*</dd>", page)
    assert not re.search(r":\s*</li>", page)
    for raw in RAW:
        assert raw not in text, raw


def test_the_request_page_opens_with_the_summary(story, client):
    rid, reference = _access(story, client)
    story_id, story_ref = _story_request(story)
    _grant(client, story_id)
    said = f"On {_sync_day(story)} {SYNC}"
    for ref in (reference, story_ref):
        text = _text(client.get(f"/requests/{ref}").get_data(as_text=True))
        assert "Your data with us, in short" in text
        assert said in text
        assert "1 perk award" in text
        assert text.index("in short") < text.index("What has happened")


def test_after_his_correction_the_report_says_our_privacy_team_corrected_it(story, client):
    story_id, story_ref = _story_request(story)
    with story.app_context():
        requests.approve(requests.get(story_id), actor="officer:2", note="Nothing shipped.")
        db.session.commit()
        corrected = date_words(utcnow())
    rid, reference = _access(story, client)
    s = _report(story, rid)["summary"]
    said = (
        f"On {corrected} our privacy team corrected your Nova X1 phone to not received, "
        f"as you asked ({story_ref})."
    )
    assert said in _sentences(s)
    assert (
        f"On {corrected} our privacy team took your Nova X1 phone off the disclosure list, "
        f"as you asked ({story_ref})."
    ) in _sentences(s)
    assert not s["held_back"] and not s["being_corrected"]
    text = _text(client.get(f"/requests/{reference}/report").get_data(as_text=True))
    assert said in text
    assert "not received" in text
    for raw in RAW:
        assert raw not in text, raw


def test_ordinary_histories_are_not_troubled_and_a_receipt_without_shipment_is(app):
    with app.app_context():
        factories.member(1)
        for status, source, extra in (
            ("offered", "award-engine", {}),
            ("claimed", "member-app", {}),
            ("shipped", "fulfilment", {"shipped_at": utcnow()}),
            ("received", "carrier-webhook", {"received_at": utcnow()}),
        ):
            factories.award(1, status=status, source=source, at=utcnow(), **extra)
        factories.award(2, status="offered", at=utcnow())
        factories.award(2, status="received", source="fulfilment-sync", at=utcnow())
        factories.commit()
        subject_id = factories.member(1).subject_id
        s = summary.build(subject_id)
    (group,) = s["troubled"]
    assert group["reference"] == "aw-2"
    assert group["changes"][-1]["sentence"].endswith(
        "our fulfilment sync marked your Nova X1 phone as received. No shipment was recorded."
    )


def test_the_summary_reads_in_batches_whatever_the_number_of_troubled_records(app):
    """One query per category, never one per record: the same number of queries for two
    troubled awards as for forty."""

    def queries(n: int) -> int:
        with app.app_context():
            member = factories.member(n)
            for i in range(n):
                factories.award(1000 * n + i, member_n=n, status="offered", at=utcnow())
                factories.award(1000 * n + i, member_n=n, status="received", at=utcnow())
            factories.commit()
            statements = []
            engine = db.engines[None]
            count = lambda *a, **k: statements.append(1)  # noqa: E731
            event.listen(engine, "before_cursor_execute", count)
            try:
                s = summary.build(member.subject_id)
            finally:
                event.remove(engine, "before_cursor_execute", count)
            assert len(s["troubled"]) == n
            return len(statements)

    assert queries(2) == queries(40)


def test_no_summary_before_the_request_stands_or_after_the_erasure(app):
    with app.app_context():
        factories.member(1)
        req = requests.file(
            type="access", email="person1@example.org", channel="web", actor="subject"
        )
        assert summary.for_request_page(req) is None  # not confirmed yet
        req.status = "open"
        assert summary.for_request_page(req)["held"]
        db.session.get(Subject, req.subject_id).erased_at = utcnow()
        assert summary.for_request_page(req) is None
