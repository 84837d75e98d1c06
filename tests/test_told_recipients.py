"""Art. 19, truthfully: "who we told" names every recipient the data map says received what a
request touched, and how each was told — by a webhook subscriber speaking for it, or by the
privacy team, recorded on the request — and says "no recipient needed to be told" only when
those records went nowhere. Before, the section listed webhook subscribers only, so a request
whose data went to brands, list consumers and a promotion's audience said nobody needed telling
whenever nobody had subscribed."""

import html
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from rights.erasure import erasure, statements
from rights.errors import Invalid
from rights.holdings import records
from rights.ledger import signing
from rights.lifecycle import requests
from rights.recipients import told, webhooks
from storage.cascades import row_filter
from storage.clock import utcnow
from storage.datamap import BY_KEY, CATEGORIES, category_of
from storage.db import db
from storage.models import (
    AuditEvent,
    Consent,
    Delivery,
    PerkAward,
    Promotion,
    RecipientNotice,
    Subscriber,
)
from storage.recipients import RECIPIENTS
from tests import factories
from tests.helpers import API, PROVENANCE, deliver
from tests.test_webhooks import Receiver

NOBODY = "No recipient of your data needed to be told"


@pytest.fixture
def app(app_factory):
    # Webhook receivers in these tests listen on 127.0.0.1.
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _world(app):
    """Member 1 with an award said received, its disclosure-list entry, and a promotion that
    used their likeness under their consent."""
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received")
        factories.consent(1, 1, purpose="name_and_likeness")
        records.upsert_disclosure(
            {"disclosure_id": "dl-1", "award_id": "aw-1", "status": "required"}, **PROVENANCE
        )
        records.upsert_promotion(
            {
                "promotion_id": "pr-1",
                "member_id": "m-1",
                "award_id": "aw-1",
                "consent_id": "con-1",
                "audience": "friends",
                "message": "Person 1 won a Nova X1 phone!",
                "uses_likeness": True,
            },
            **PROVENANCE,
        )
        db.session.commit()


def _file(app, type_, **details) -> str:
    with app.app_context():
        req = requests.file(
            type=type_, member_id="m-1", channel="api", verified=True, actor="t", details=details
        )
        db.session.commit()
        return req.id


def _approve(app, rid):
    with app.app_context():
        requests.approve(requests.get(rid), actor="officer:1")
        db.session.commit()


def _touched(who: dict) -> list[str]:
    return [c["category"] for c in who["categories"]]


def _recipients_of(keys) -> set[str]:
    """What the data map says the categories ``keys`` went to."""
    return {to.key for key in keys for to in BY_KEY[key].recipients}


def _award_and_what_is_built_on_it() -> set[str]:
    """aw-1's category and each category the data map builds on awards that holds a row
    built on aw-1."""
    award = db.session.execute(
        select(PerkAward).where(PerkAward.external_id == "aw-1")
    ).scalar_one()
    out = {category_of(award).key}
    for dependant in BY_KEY["perk_awards"].dependants:
        model = BY_KEY[dependant.category].model
        if db.session.execute(
            select(model.id).where(getattr(model, dependant.via) == award.id)
        ).first():
            out.add(dependant.category)
    return out


def _holding(subject_id: str) -> set[str]:
    """The categories holding records of the subject, read table by table from the map."""
    out = set()
    for cat in CATEGORIES:
        query = select(func.count()).select_from(cat.model)
        query = query.where(getattr(cat.model, cat.subject_column) == subject_id)
        if row_filter(cat) is not None:
            query = query.where(row_filter(cat))
        if db.session.execute(query).scalar_one():
            out.add(cat.key)
    return out


def _subject_page(app, rid: str) -> str:
    """The subject's own request page, as their browser sees it (text, entities undone)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["grants"] = {rid: "9999-12-31T00:00:00+00:00"}
    with app.app_context():
        reference = requests.get(rid).reference
    resp = client.get(f"/requests/{reference}")
    assert resp.status_code == 200
    return html.unescape(resp.get_data(as_text=True))


def _who_we_told(page: str) -> str:
    """The "Who we told" section of a page (other sections may name recipients too)."""
    start = page.index('<section aria-labelledby="recipients">')
    return page[start : page.index("</section>", start)]


def _rectified(app) -> tuple[str, set[str]]:
    rid = _file(app, "rectification", records=["aw-1"], correction="it never came")
    with app.app_context():
        categories = _award_and_what_is_built_on_it()
    _approve(app, rid)
    return rid, categories


def _restricted(app) -> tuple[str, set[str]]:
    rid = _file(app, "restriction", records=["aw-1"])
    with app.app_context():
        categories = _award_and_what_is_built_on_it()
    _approve(app, rid)
    return rid, categories


def _erased(app) -> tuple[str, set[str]]:
    rid = _file(app, "erasure")
    with app.app_context():
        categories = _holding(requests.get(rid).subject_id)
    deliver(app)  # runs the erasure
    return rid, categories


def _likeness_categories() -> set[str]:
    # What the name-and-likeness purpose reaches (rights/contest/objections.py): the consent,
    # and the promotions withdrawn with it.
    return {category_of(Consent).key, category_of(Promotion).key}


def _objected(app) -> tuple[str, set[str]]:
    return _file(app, "objection", purpose="likeness"), _likeness_categories()


def _withdrawn(app) -> tuple[str, set[str]]:
    return (
        _file(app, "consent_withdrawal", consent_purpose="name_and_likeness"),
        _likeness_categories(),
    )


RIGHTS = {
    "rectification": _rectified,
    "erasure": _erased,
    "restriction": _restricted,
    "objection": _objected,
    "consent_withdrawal": _withdrawn,
}


@pytest.mark.parametrize("right", RIGHTS)
def test_who_we_told_names_every_recipient_the_data_map_gives_for_what_was_touched(app, right):
    _world(app)
    rid, categories = RIGHTS[right](app)
    expected = _recipients_of(categories)
    assert expected  # the world reaches recipients for every right
    with app.app_context():
        req = requests.get(rid)
        assert req.status == "completed"
        who = told.of_request(req)
    assert set(_touched(who)) == categories
    assert {r["recipient"] for r in who["recipients"] if r["required"]} == expected
    assert who["nobody_needed"] is False
    # Nobody speaks for them by webhook and nobody recorded a notice: the privacy team must.
    assert {r["state"] for r in who["recipients"]} == {"to_be_told"}
    page = _subject_page(app, rid)
    assert NOBODY not in page
    section = _who_we_told(page)
    assert "Who we told" in section
    for key in expected:
        assert RECIPIENTS[key].name in section, key
    for key in set(RECIPIENTS) - expected:
        assert RECIPIENTS[key].name not in section, key
    assert "To be told by our privacy team" in section


def test_a_subscriber_speaking_for_the_brand_shows_it_told_then_confirmed(app, receiver):
    with app.app_context():
        _, _, key = webhooks.add("Nova Mobile", receiver.url, [], actor="t", recipient="brand")
        db.session.commit()
    _world(app)
    rid, categories = _rectified(app)
    assert "brand" in _recipients_of(categories)

    def brand():
        with app.app_context():
            who = told.of_request(requests.get(rid))
        (entry,) = [r for r in who["recipients"] if r["recipient"] == "brand"]
        return who, entry

    who, entry = brand()
    assert entry["state"] == "pending" and entry["how"] == "being told by webhook"
    deliver(app)
    who, entry = brand()
    assert entry["state"] == "delivered" and entry["told_at"]
    assert {e["event"] for e in entry["events"]} == {"subject.restricted", "subject.rectified"}
    # Only the brand speaks through a webhook; the others are still the privacy team's.
    others = {r["recipient"]: r["state"] for r in who["recipients"] if r["recipient"] != "brand"}
    assert set(others) == _recipients_of(categories) - {"brand"}
    assert set(others.values()) == {"to_be_told"}
    client = app.test_client()
    with app.app_context():
        ids = db.session.execute(select(Delivery.id)).scalars().all()
    for delivery_id in ids:
        resp = client.post(
            f"{API}/deliveries/{delivery_id}/confirm", headers={"Authorization": f"Bearer {key}"}
        )
        assert resp.status_code == 200
    who, entry = brand()
    assert entry["state"] == "confirmed" and entry["confirmed_at"]
    section = _who_we_told(_subject_page(app, rid))
    line = section[section.index(RECIPIENTS["brand"].name) :].split("</tr>")[0]
    assert line.count("Told by webhook on") == 1 and "confirmed they acted on" in line
    # The subscriber's own name is not listed apart: it is the brand.
    assert "Nova Mobile" not in section


def test_an_officer_records_who_was_told_by_hand_corrects_and_withdraws_it(app, login_as):
    _world(app)
    rid, _ = _rectified(app)
    officer = login_as("officer", name="Dana Okafor")
    page = html.unescape(officer.get(f"/dashboard/requests/{rid}").get_data(as_text=True))
    assert "Who must be told (Art. 19)" in page
    assert "Record that they were told" in page
    today = utcnow().date()
    url = f"/dashboard/requests/{rid}/told/fulfilment"

    def notice(how="by email to their privacy contact", when=today):
        return officer.post(url, data={"fulfilment-how": how, "fulfilment-told_on": str(when)})

    def fulfilment():
        with app.app_context():
            who = told.of_request(requests.get(rid))
        return next(r for r in who["recipients"] if r["recipient"] == "fulfilment")

    # Refused with the form and what to fix, never a 500, and nothing recorded.
    future = notice(when=today + timedelta(days=1))
    assert future.status_code == 422
    assert "The date cannot be in the future." in future.get_data(as_text=True)
    empty = notice(how="")
    assert empty.status_code == 422
    assert "This field is required." in empty.get_data(as_text=True)
    blank = notice(how="   ")
    assert blank.status_code == 422
    assert "Say how they were told." in blank.get_data(as_text=True)
    too_long = notice(how="x" * 301)
    assert too_long.status_code == 422
    before = notice(when=today - timedelta(days=400))
    assert before.status_code == 422
    assert "before the request was received" in before.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(RecipientNotice)).first() is None
    assert fulfilment()["state"] == "to_be_told"

    assert notice().status_code == 303
    entry = fulfilment()
    day = f"{today.day} {today:%B %Y}"
    assert entry["state"] == "told"
    assert entry["how"] == f"told by Dana Okafor on {day}, by email to their privacy contact"
    section = _who_we_told(_subject_page(app, rid))
    assert f"Told by Dana Okafor on {day}, by email to their privacy contact" in section

    # Recording again replaces what was recorded (a correction), audited as one.
    assert notice(how="by registered letter").status_code == 303
    assert fulfilment()["how"].endswith(", by registered letter")
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(RecipientNotice)).scalar() == 1
    # And it can be undone: the recipient is to be told again.
    assert officer.post(f"{url}/withdraw").status_code == 303
    assert fulfilment()["state"] == "to_be_told"
    assert officer.post(f"{url}/withdraw").status_code == 404  # nothing left to withdraw
    with app.app_context():
        audited = db.session.execute(
            select(AuditEvent).where(AuditEvent.action.like("recipient_notice.%"))
        ).scalars()
        trail = [(e.action, e.actor, e.details) for e in audited]
    assert [a for a, _, _ in trail] == [
        "recipient_notice.recorded",
        "recipient_notice.corrected",
        "recipient_notice.withdrawn",
    ]
    assert {actor for _, actor, _ in trail} == {f"officer:{officer.officer_id}"}
    for _, _, details in trail:
        assert details["recipient"] == "fulfilment"
        assert "letter" not in str(details) and "privacy contact" not in str(details)


def test_only_officers_who_decide_record_notices_and_only_for_this_requests_recipients(
    app, login_as
):
    _world(app)
    rid, categories = _rectified(app)
    form = {"how": "by phone", "told_on": str(utcnow().date())}
    auditor = login_as("auditor")
    assert auditor.get(f"/dashboard/requests/{rid}").status_code == 200
    assert (
        auditor.post(
            f"/dashboard/requests/{rid}/told/brand", data={f"brand-{k}": v for k, v in form.items()}
        ).status_code
        == 403
    )
    officer = login_as("officer")
    assert officer.post(f"/dashboard/requests/{rid}/told/nobody", data=form).status_code == 404
    elsewhere = next(k for k in RECIPIENTS if k not in _recipients_of(categories))
    resp = officer.post(
        f"/dashboard/requests/{rid}/told/{elsewhere}",
        data={f"{elsewhere}-{k}": v for k, v in form.items()},
    )
    assert resp.status_code == 422
    with app.app_context():
        assert db.session.execute(select(RecipientNotice)).first() is None


def test_no_recipient_needed_to_be_told_only_where_the_records_went_nowhere(app):
    _world(app)
    # A consent is kept to prove it was given: the data map gives it to nobody.
    assert not BY_KEY[category_of(Consent).key].recipients
    with app.app_context():
        # A subscriber that speaks for no recipient is still told, and still listed.
        webhooks.add("Audit mirror", "https://93.184.216.34/hooks", [], actor="t")
        db.session.commit()
    rid = _file(app, "restriction", records=["con-1"])
    _approve(app, rid)
    with app.app_context():
        who = told.of_request(requests.get(rid))
    assert who["nobody_needed"] is True
    assert _touched(who) == ["consents"]
    assert [(r["name"], r["required"], r["state"]) for r in who["recipients"]] == [
        ("Audit mirror", False, "pending")
    ]
    section = _who_we_told(_subject_page(app, rid))
    assert NOBODY in section and "Consents" in section
    assert "Audit mirror" in section and "Being told by webhook" in section
    for recipient in RECIPIENTS.values():
        assert recipient.name not in section


def test_the_receipt_and_the_statement_list_each_recipient_and_how_it_was_told(app, login_as):
    _world(app)
    rid, categories = _erased(app)
    expected = _recipients_of(categories)
    officer = login_as("officer", name="Dana Okafor")
    resp = officer.post(
        f"/dashboard/requests/{rid}/told/list_consumers",
        data={
            "list_consumers-how": "by email to each list's privacy contact",
            "list_consumers-told_on": str(utcnow().date()),
        },
    )
    assert resp.status_code == 303
    with app.app_context():
        receipt = erasure.receipt_for(requests.get(rid))
        claims = signing.verify(receipt.jws, signing.RECEIPT_TYP)
        record_key = erasure.reveal_record_key(receipt)
        db.session.commit()
    # The claims it always had are all still there.
    assert {"categories", "recipients", "statement_url", "jwks_url", "sub"} <= set(claims)
    listed = {c["category"] for c in claims["categories"] if c["records"]}
    assert _touched(claims["told"]) == [c.key for c in CATEGORIES if c.key in listed]
    assert {r["recipient"] for r in claims["told"]["recipients"]} == expected
    # Signed before anyone was told by hand: each is the privacy team's to tell.
    assert {r["state"] for r in claims["told"]["recipients"]} == {"to_be_told"}
    with app.app_context():
        _, statement = statements.for_record_key(record_key)
    now = {r["recipient"]: r for r in statement["told"]["recipients"]}
    assert set(now) == expected
    assert now["list_consumers"]["state"] == "told"
    assert now["list_consumers"]["notice"]["recorded_by"] == "Dana Okafor"
    assert {r["state"] for k, r in now.items() if k != "list_consumers"} == {"to_be_told"}
    page = html.unescape(
        app.test_client().post("/records", data={"record_key": record_key}).get_data(as_text=True)
    )
    assert NOBODY not in page
    section = _who_we_told(page)
    assert "Who we told" in section
    for key in expected:
        assert RECIPIENTS[key].name in section
    assert "Told by Dana Okafor on" in section


def test_reading_who_was_told_costs_the_same_whatever_the_number_of_deliveries(app):
    """One query for what was touched, two for how each was told: no query per recipient or
    delivery."""
    _world(app)
    with app.app_context():
        for n in range(3):
            webhooks.add(
                f"Brand {n}", "https://93.184.216.34/hooks", [], recipient="brand", actor="t"
            )
        webhooks.add("Other", "https://93.184.216.34/hooks", [], actor="t")
        db.session.commit()
    rid, _ = _rectified(app)
    with app.app_context():
        req = requests.get(rid)
        statements_run = []
        engine = db.engine

        def count(*args):
            statements_run.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            who = told.of_request(req)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(who["recipients"]) >= 5 and len(statements_run) == 3


def test_subscribers_speak_for_recipients_the_data_map_declares(app, runner):
    with app.app_context():
        with pytest.raises(Invalid) as refused:
            webhooks.add("x", "https://93.184.216.34/hooks", [], actor="t", recipient="nova")
        assert "recipient" in refused.value.fields
    bad = runner.invoke(
        args=["subscribers", "add", "https://93.184.216.34/h", "--events", "subject.objected"]
        + ["--name", "Ads", "--recipient", "nova"]
    )
    assert bad.exit_code != 0 and "known recipients" in bad.output
    good = runner.invoke(
        args=["subscribers", "add", "https://93.184.216.34/h", "--events", "subject.objected"]
        + ["--name", "Ads", "--recipient", "ad_system"]
    )
    assert good.exit_code == 0, good.output
    assert f"Speaks for: {RECIPIENTS['ad_system'].name}." in good.output
    with app.app_context():
        assert db.session.execute(select(Subscriber.recipient)).scalar_one() == "ad_system"
