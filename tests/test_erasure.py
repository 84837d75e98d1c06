"""Erasure that holds: nothing left but what the law requires, crypto-shredding, suppression,
receipts and record keys, kill-and-rerun, restore-then-replay."""

import json
import os
import shutil
import warnings
from pathlib import Path

import jwt
import pytest
from joserfc import jws as jose_jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws
from sqlalchemy import func, select

from demo import loader as demo
from rights.erasure import erasure
from rights.holdings import records
from rights.ledger import apikeys, signing
from rights.lifecycle import requests
from storage import vault
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import (
    ErasureRun,
    Member,
    OutboxMessage,
    PerkAward,
    Receipt,
    RecordHistory,
    RightsRequest,
    Subject,
    SubjectKey,
    SuppressionTombstone,
)
from tests import factories
from tests.conftest import PG_URL
from tests.helpers import deliver

STORY = demo.STORY_EMAIL


def _load_story(app, extra=3):
    with app.app_context():
        demo.load(extra_members=extra)
        db.session.commit()
        sam = db.session.execute(
            select(Member).where(Member.external_id == demo.STORY_MEMBER)
        ).scalar_one()
        return sam.subject_id


def _file_erasure(app, member_id=demo.STORY_MEMBER, api_key_id=None):
    with app.app_context():
        req = requests.file(
            type="erasure",
            member_id=member_id,
            channel="api",
            verified=True,
            actor="apikey:platform",
            api_key_id=api_key_id,
        )
        db.session.commit()
        assert req.status == "in_progress"
        return req.id


def _count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _state(app, subject_id):
    """Everything erasure decides, as plain data (to compare runs)."""
    with app.app_context():
        out = {}
        for cat in CATEGORIES:
            table = cat.model.__table__
            rows = db.session.execute(
                select(table).where(table.c[cat.subject_column] == subject_id)
            ).all()
            out[cat.key] = len(rows)
        out["history"] = db.session.scalar(
            select(func.count())
            .select_from(RecordHistory)
            .where(RecordHistory.subject_id == subject_id)
        )
        out["key"] = db.session.get(SubjectKey, subject_id) is not None
        out["receipts"] = db.session.scalar(select(func.count()).select_from(Receipt))
        return out


def test_story_member_is_erased_leaving_only_what_the_law_requires(app):
    subject_id = _load_story(app)
    rid = _file_erasure(app)
    deliver(app)  # the worker runs the erasure job
    with app.app_context():
        req = requests.get(rid)
        assert req.status == "completed"
        assert db.session.get(SubjectKey, subject_id) is None  # crypto-shredded
        subject = db.session.get(Subject, subject_id)
        assert subject.email_index is None and subject.erased_at is not None
        for cat in CATEGORIES:
            table = cat.model.__table__
            rows = db.session.execute(
                select(table).where(table.c[cat.subject_column] == subject_id)
            ).all()
            if cat.key == "notices":
                # Only the last message remains: sealed with the service key, wiped once sent.
                assert [(r.topic, r.sealed_with, r.payload_enc) for r in rows] == [
                    ("notice.erased", "service", b"")
                ]
            elif cat.erasure.action == "delete":
                assert rows == [], cat.key
            else:
                assert all(
                    r.restricted_at is not None and r.retain_until is not None for r in rows
                ), cat.key
        (award,) = db.session.execute(
            select(PerkAward).where(PerkAward.subject_id == subject_id)
        ).scalars()
        assert award.retained_under.startswith("Art. 17(3)(b)")
        assert award.retain_until.year == award.restricted_at.year + 5
        # What is left cannot be read: no key, no plaintext.
        with pytest.raises(vault.KeyMissing):
            vault.decrypt(subject_id, "rights_requests.contact_enc", req.contact_enc)
    # Every other member is untouched.
    assert _count(app, Member) == 3


@pytest.mark.skipif(bool(PG_URL), reason="reads the SQLite files themselves")
def test_no_plaintext_and_no_usable_key_remain(app):
    subject_id = _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        erasure.run(rid)
        db.engines[None].dispose()
        db.engines["keystore"].dispose()
    main = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    keys = Path(app.config["SQLALCHEMY_BINDS"]["keystore"].removeprefix("sqlite:///"))
    raw = main.read_bytes() + keys.read_bytes()
    for needle in (b"sam.rivera", b"Sam Rivera", b"Rivera", subject_id.encode() + b"\x00"):
        assert needle not in raw
    with app.app_context():
        assert db.session.get(SubjectKey, subject_id) is None


def _verify_with_three_libraries(token, jwks_doc, typ):
    header = json.loads(jwt.utils.base64url_decode(token.split(".")[0]))
    assert header["alg"] == "EdDSA" and header["typ"] == typ and header["kid"]
    # joserfc
    key_set = KeySet.import_key_set(jwks_doc)
    with warnings.catch_warnings():
        # joserfc flags the RFC 8037 name "EdDSA" (RFC 9864 prefers "Ed25519"); DESIGN.md
        # asks for EdDSA so that every mainstream library verifies.
        warnings.simplefilter("ignore", SecurityWarning)
        obj = jose_jws.deserialize_compact(token, key_set, algorithms=["EdDSA"])
    claims = json.loads(obj.payload)
    # jwcrypto
    jc_set = jc_jwk.JWKSet.from_json(json.dumps(jwks_doc))
    verifier = jc_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jc_set.get_key(header["kid"]), alg="EdDSA")
    assert json.loads(verifier.payload) == claims
    # PyJWT
    pyjwk = jwt.PyJWKSet.from_dict(jwks_doc)[header["kid"]]
    decoded = jwt.api_jws.PyJWS().decode_complete(token, key=pyjwk.key, algorithms=["EdDSA"])
    assert json.loads(decoded["payload"]) == claims
    return claims


def test_receipt_and_statement_verify_with_three_jose_libraries(app, client):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        receipt = erasure.run(rid)
        token = receipt.jws
        key = erasure.reveal_record_key(receipt)
        db.session.commit()
    jwks_doc = client.get("/.well-known/jwks.json").get_json()
    claims = _verify_with_three_libraries(token, jwks_doc, signing.RECEIPT_TYP)
    by_cat = {c["category"]: c for c in claims["categories"]}
    assert by_cat["profile"]["action"] == "erased"
    assert by_cat["perk_awards"]["action"] == "retained"
    assert by_cat["perk_awards"]["exception"].startswith("Art. 17(3)(b)")
    assert by_cat["perk_awards"]["retain_until"]
    assert by_cat["disclosures"]["records"] == 1
    assert claims["request_id"] == rid and claims["sub"].startswith("sub_")
    text_claims = json.dumps(claims)
    assert "Rivera" not in text_claims and "@" not in text_claims
    resp = client.post("/api/v1/statements", json={"record_key": key})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    statement = _verify_with_three_libraries(
        resp.get_json()["statement"], jwks_doc, signing.STATEMENT_TYP
    )
    assert statement["holds_nothing"] is False
    held = {h["category"]: h for h in statement["held"]}
    (award,) = held["perk_awards"]["records"]
    assert award["perk"]["item"] == "Nova X1 phone" and award["retain_until"]
    assert held["disclosures"]["exception"].startswith("Art. 17(3)(b)")


def test_receipt_signed_before_rotation_still_verifies(app, client, runner):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        token = erasure.run(rid).jws
    old_kid = json.loads(jwt.utils.base64url_decode(token.split(".")[0]))["kid"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    jwks_doc = client.get("/.well-known/jwks.json").get_json()
    assert len(jwks_doc["keys"]) == 2 and old_kid in {k["kid"] for k in jwks_doc["keys"]}
    _verify_with_three_libraries(token, jwks_doc, signing.RECEIPT_TYP)


@pytest.mark.parametrize(
    "crash_after", ["planned", "rows_removed", "retained", "receipt", "key_destroyed"]
)
def test_killed_erasure_finishes_once_when_rerun(app, monkeypatch, crash_after):
    subject_id = _load_story(app, extra=1)
    rid = _file_erasure(app)
    real_step = erasure._step

    class Killed(Exception):
        pass

    # Steps (storage.steps): the step's yield is its commit, so each dies after committing.
    def step_then_die(run, step):
        yield from real_step(run, step)
        if step == crash_after:
            raise Killed(step)

    if crash_after == "planned":
        real_plan = erasure._plan_steps

        def plan_then_die(request):
            yield from real_plan(request)
            raise Killed("planned")

        monkeypatch.setattr(erasure, "_plan_steps", plan_then_die)
    else:
        monkeypatch.setattr(erasure, "_step", step_then_die)
    with app.app_context(), pytest.raises(Killed):
        erasure.run(rid)
    monkeypatch.undo()
    with app.app_context():
        db.session.remove()
    with app.app_context():
        erasure.run(rid)  # the rerun finishes the job
        erasure.run(rid)  # and another changes nothing
        assert db.session.get(ErasureRun, rid).step == "completed"
    state = _state(app, subject_id)
    assert state["receipts"] == 1 and state["key"] is False
    assert state["profile"] == 0 and state["promotions"] == 0 and state["history"] >= 1
    assert _count(app, OutboxMessage, OutboxMessage.topic == "notice.erased") == 1


def test_large_subject_is_erased_in_batches(app, monkeypatch):
    with app.app_context():
        member = factories.member(1)
        factories.consent(1, 1)  # likeness is used only under a consent in force
        for n in range(260):
            records.upsert_promotion(
                {
                    "promotion_id": f"pr-{n}",
                    "member_id": "m-1",
                    "audience": "friends",
                    "message": f"Person 1 won perk {n}",
                    "uses_likeness": True,
                },
                source="promo-service",
                actor="spotlight",
            )
        factories.commit()
        subject_id = member.subject_id
    batches = []
    real_execute = db.session.execute

    def spy(statement, *args, **kwargs):
        if (
            getattr(statement, "is_delete", False)
            and getattr(statement.table, "name", "") == "promotions"
        ):
            batches.append(1)
        return real_execute(statement, *args, **kwargs)

    with app.app_context():
        monkeypatch.setattr(db.session, "execute", spy)
        counts = erasure.erase_rows(subject_id, batch=50)
        monkeypatch.undo()
    assert counts["promotions"] == 260
    assert len(batches) == 6  # 50 at a time, never all at once
    state = _state(app, subject_id)
    assert state["promotions"] == 0 and state["profile"] == 0


def test_suppression_refuses_reingestion_until_a_new_signup(app, client, api_key):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        erasure.run(rid)
    body = {
        "member_id": demo.STORY_MEMBER,
        "email": STORY,
        "name": "Sam Rivera",
        "source": "crm-sync",
        "actor": "nightly",
    }
    resp = client.post("/api/v1/members", json=body, headers=api_key)
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert set(err["fields"]) == {"member_id", "email"} and "Rivera" not in err["message"]
    other_id = client.post("/api/v1/members", json={**body, "member_id": "m-new"}, headers=api_key)
    assert other_id.status_code == 409 and set(other_id.get_json()["error"]["fields"]) == {"email"}
    award = {
        "award_id": "aw-x",
        "member_id": demo.STORY_MEMBER,
        "perk_id": "p-nova-x1",
        "brand_id": "b-nova",
        "status": "received",
        "source": "fulfilment-sync",
        "actor": "sync-job",
    }
    resp = client.post("/api/v1/perk-awards", json=award, headers=api_key)
    assert resp.status_code == 409 and "member_id" in resp.get_json()["error"]["fields"]
    # A new sign-up is a new member id; an erased id is never reused.
    same_id = client.post("/api/v1/members", json={**body, "new_signup": True}, headers=api_key)
    assert same_id.status_code == 409
    again = client.post(
        "/api/v1/members",
        json={**body, "member_id": "m-0001-new", "new_signup": True},
        headers=api_key,
    )
    assert again.status_code == 201
    with app.app_context():
        fresh = db.session.execute(
            select(Member).where(Member.external_id == "m-0001-new")
        ).scalar_one()
        assert db.session.get(Subject, fresh.subject_id).erased_at is None


@pytest.mark.skipif(bool(PG_URL), reason="restores a SQLite file as a backup")
def test_restore_then_replay_removes_the_subject_again(app, runner, tmp_path):
    subject_id = _load_story(app, extra=1)
    main = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    with app.app_context():
        db.engines[None].dispose()
    shutil.copy(main, tmp_path / "backup.db")  # last night's backup, before the erasure
    rid = _file_erasure(app)
    with app.app_context():
        record_key = erasure.reveal_record_key(erasure.run(rid))
        db.session.commit()
        db.engines[None].dispose()
    shutil.copy(tmp_path / "backup.db", main)  # restore it
    assert _count(app, Member, Member.subject_id == subject_id) == 1  # he is back...
    result = runner.invoke(args=["erasure", "replay"])
    assert result.exit_code == 0 and "replayed 1 erasure" in result.output
    state = _state(app, subject_id)
    assert state["profile"] == 0 and state["promotions"] == 0 and state["key"] is False
    with app.app_context():
        assert all(
            a.restricted_at
            for a in db.session.execute(
                select(PerkAward).where(PerkAward.subject_id == subject_id)
            ).scalars()
        )
    again = runner.invoke(args=["erasure", "replay"])
    assert again.exit_code == 0
    # The restored database has no receipt row; the key store's copy still opens the statement.
    resp = app.test_client().post("/api/v1/statements", json={"record_key": record_key})
    assert resp.status_code == 200
    held = {h["category"] for h in resp.get_json()["held"]}
    assert {"perk_awards", "disclosures"} <= held


def test_statement_lookups_reveal_nothing_and_are_rate_limited(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STATEMENTS="4 per minute")
    client = app.test_client()
    answers = set()
    for key in (
        "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH",
        "not a key",
        "x" * 100,
        "2222-2222-2222-2222-2222-2222-2222-2222",
    ):
        resp = client.post("/api/v1/statements", json={"record_key": key})
        assert resp.status_code == 404
        answers.add(json.dumps(resp.get_json(), sort_keys=True))
    assert len(answers) == 1
    limited = client.post("/api/v1/statements", json={"record_key": "x"})
    assert limited.status_code == 429
    assert set(limited.get_json()["error"]) == {"code", "message", "fields"}


def test_web_records_page_same_answer_for_unknown_and_malformed(client):
    unknown, malformed = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH", "nonsense"
    a = client.post("/records", data={"record_key": unknown})
    b = client.post("/records", data={"record_key": malformed})
    assert a.status_code == b.status_code == 404
    # The same page, byte for byte, but for the box, which keeps what was typed (issue 16).
    assert a.get_data(as_text=True).replace(f'value="{unknown}"', 'value=""') == b.get_data(
        as_text=True
    ).replace(f'value="{malformed}"', 'value=""')
    assert "No record matches this key" in a.get_data(as_text=True)


def test_record_key_shown_once_then_only_its_hash_remains(app, client, api_key):
    _load_story(app, extra=1)
    filed = client.post(
        "/api/v1/requests",
        json={"type": "erasure", "member_id": demo.STORY_MEMBER, "verified": True},
        headers=api_key,
    ).get_json()
    deliver(app)
    first = client.get(f"/api/v1/requests/{filed['id']}", headers=api_key).get_json()
    key = first["result"]["record_key"]
    # 27 random symbols of Crockford's Base32 (134.8 bits) and a check symbol (issue 16).
    assert len(erasure.normalise_record_key(key)) == 28
    assert first["result"]["receipt"].count(".") == 2
    second = client.get(f"/api/v1/requests/{filed['id']}", headers=api_key).get_json()
    assert "record_key" not in second["result"] and second["result"]["receipt"]
    with app.app_context():
        receipt = db.session.execute(select(Receipt)).scalar_one()
        assert receipt.record_key_sealed is None
        assert key not in receipt.record_key_hash and len(receipt.record_key_hash) == 64
        # Dashes, spaces and case do not matter when typing it back.
        assert erasure.receipt_by_record_key(key.lower().replace("-", " ")).id == receipt.id


def test_erasure_email_carries_key_and_receipt_then_is_wiped(app, mailbox):
    _load_story(app, extra=1)
    _file_erasure(app)
    deliver(app)
    deliver(app)
    msg = mailbox.last_to(STORY)
    body = mailbox.body(msg)
    assert "Your record key:" in body and "/records" in body
    with app.app_context():
        sent = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.topic == "notice.erased")
        ).scalar_one()
        assert sent.status == "sent" and sent.payload_enc == b""


def test_statement_says_nothing_is_held_once_retention_ends(app, client):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        receipt = erasure.run(rid)
        key = erasure.reveal_record_key(receipt)
        db.session.commit()
        # What the retention sweep (a later issue) will do when retain_until passes:
        for cat in reversed(CATEGORIES):  # children (disclosures) before parents (awards)
            if cat.erasure.action == "retain" and cat.model is not RightsRequest:
                db.session.execute(
                    cat.model.__table__.delete().where(
                        cat.model.__table__.c.subject_id == receipt_subject(receipt)
                    )
                )
        db.session.commit()
    resp = client.post("/api/v1/statements", json={"record_key": key}).get_json()
    held = {h["category"] for h in resp["held"]}
    assert "perk_awards" not in held and "disclosures" not in held


def receipt_subject(receipt):
    return db.session.execute(
        select(Subject.id).where(Subject.ref == receipt.subject_ref)
    ).scalar_one()


def test_unverified_erasure_does_nothing(app, client):
    _load_story(app, extra=1)
    resp = client.post("/requests/new", data={"type": "erasure", "email": STORY})
    assert resp.status_code == 303
    deliver(app)
    assert _count(app, Member) == 2
    with app.app_context():
        latest = db.session.execute(
            select(RightsRequest).order_by(RightsRequest.received_at.desc()).limit(1)
        ).scalar_one()
        assert latest.type == "erasure" and latest.status == "awaiting_verification"


def test_earlier_downloads_end_with_the_erasure(app, client, api_key):
    _load_story(app, extra=1)
    access_req = client.post(
        "/api/v1/requests",
        json={"type": "access", "member_id": demo.STORY_MEMBER, "verified": True},
        headers=api_key,
    ).get_json()
    report_url = access_req["result"]["report_url"]
    assert client.get(report_url, headers=api_key).status_code == 200
    rid = _file_erasure(app)
    with app.app_context():
        erasure.run(rid)
    assert client.get(report_url, headers=api_key).status_code == 404
    again = client.get(f"/api/v1/requests/{access_req['id']}", headers=api_key)
    assert again.status_code == 200 and "report_url" not in again.get_json()["result"]


def test_rerun_repairs_a_key_store_commit_that_did_not_land(app):
    subject_id = _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        erasure.run(rid)
        # As if the key store's commits had failed while the main database's went through:
        db.session.add(SubjectKey(subject_id=subject_id, wrapped_key=b"x" * 60))
        db.session.execute(SuppressionTombstone.__table__.delete())
        db.session.commit()
    with app.app_context():
        erasure.run(rid)
        assert db.session.get(SubjectKey, subject_id) is None
        kinds = sorted(t.kind for t in db.session.execute(select(SuppressionTombstone)).scalars())
        assert kinds == ["email", "member_id"]


def test_receipt_counts_survive_a_resumed_run(app, monkeypatch):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    real_step = erasure._step

    def die_at_rows_removed(run, step):
        if step == "rows_removed":
            raise RuntimeError("killed")
        yield from real_step(run, step)

    monkeypatch.setattr(erasure, "_step", die_at_rows_removed)
    with app.app_context(), pytest.raises(RuntimeError):
        erasure.run(rid)
    monkeypatch.undo()
    with app.app_context():
        db.session.remove()
    with app.app_context():
        token = erasure.run(rid).jws
        claims = signing.verify(token, signing.RECEIPT_TYP)
    by_cat = {c["category"]: c["records"] for c in claims["categories"]}
    assert by_cat["profile"] == 1 and by_cat["promotions"] == 1


def test_erasure_closes_the_subjects_other_requests(app, client, mailbox):
    _load_story(app, extra=1)
    client.post("/requests/new", data={"type": "access", "email": STORY})
    deliver(app)
    pending_link = mailbox.body(mailbox.last_to(STORY)).split("http://lethe.test")[1].split()[0]
    with app.app_context():
        first = requests.file(
            type="erasure", member_id=demo.STORY_MEMBER, channel="api", verified=True, actor="t"
        ).id
        second = requests.file(
            type="erasure", member_id=demo.STORY_MEMBER, channel="api", verified=True, actor="t"
        ).id
        db.session.commit()
    deliver(app)
    with app.app_context():
        assert requests.get(first).status == "completed"
        assert requests.get(second).status == "withdrawn"  # superseded, its job a no-op
        assert db.session.scalar(select(func.count()).select_from(Receipt)) == 1
    # The access request still waiting for its link is closed, not broken.
    assert client.post(pending_link).status_code == 400


def _key_id(app, headers) -> int:
    """The id of the API key in ``headers`` (a key reads and acts on what it filed only)."""
    with app.app_context():
        return apikeys.authenticate(headers["Authorization"].split()[1]).id


def test_erasure_under_way_cannot_be_withdrawn(app, client, api_key):
    _load_story(app, extra=1)
    rid = _file_erasure(app, api_key_id=_key_id(app, api_key))
    with app.app_context():
        erasure._plan(requests.get(rid))
    resp = client.post(f"/api/v1/requests/{rid}/withdraw", headers=api_key)
    assert resp.status_code == 409
    with app.app_context():
        erasure.run(rid)
        assert requests.get(rid).status == "completed"


def test_nothing_new_about_an_erased_member_and_retained_rows_stay_put(app, client, api_key):
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        erasure._plan(requests.get(rid))  # the erasure has begun: ingestion stops now
    promo = {
        "promotion_id": "pr-late",
        "member_id": demo.STORY_MEMBER,
        "audience": "public",
        "source": "promo-service",
        "actor": "spotlight",
    }
    assert client.post("/api/v1/promotions", json=promo, headers=api_key).status_code == 409
    with app.app_context():
        erasure.run(rid)
    disclosure = {
        "disclosure_id": "dl-late",
        "award_id": "aw-0001-nova",
        "status": "disclosed",
        "source": "disclosure-generator",
        "actor": "ftc-list-build",
    }
    resp = client.post("/api/v1/disclosures", json=disclosure, headers=api_key)
    assert resp.status_code == 409 and "award_id" in resp.get_json()["error"]["fields"]


def test_extended_then_erased_request_still_lists(app, client, api_key):
    _load_story(app, extra=1)
    rid = _file_erasure(app, api_key_id=_key_id(app, api_key))
    with app.app_context():
        requests.extend(requests.get(rid), months=1, reason="many recipients", actor="dpo")
        db.session.commit()
        erasure.run(rid)
    listing = client.get("/api/v1/requests", headers=api_key)
    assert listing.status_code == 200
    one = client.get(f"/api/v1/requests/{rid}", headers=api_key).get_json()
    assert one["extended"]["months"] == 1 and one["extended"]["reason"] is None


def test_a_destroyed_key_is_in_no_file_of_the_embedded_key_store(app):
    """WAL keeps replaced pages in the log until a checkpoint, and a deleted row stays in a
    free page unless secure delete is on: after an erasure neither holds the wrapped key."""
    if PG_URL:
        pytest.skip("the embedded key store only (PostgreSQL: shred epochs, issue 13)")
    _load_story(app, extra=1)
    rid = _file_erasure(app)
    with app.app_context():
        subject_id = requests.get(rid).subject_id
        wrapped = db.session.get(SubjectKey, subject_id).wrapped_key
        path = db.engines["keystore"].url.database
    erasure_run = None
    with app.app_context():
        erasure_run = erasure.run(rid)
    assert erasure_run is not None
    files = [p for p in (path, path + "-wal", path + "-journal") if os.path.exists(p)]
    assert files
    for name in files:
        with open(name, "rb") as fh:
            assert wrapped not in fh.read(), name


def test_development_mail_of_an_erased_person_is_removed_with_them(app_factory, tmp_path):
    """The file mail backend (make run) wrote an erased person's address and links to disk
    for good (issue 12 item 11): their folder goes at erasure; all files after a week."""
    mail_dir = tmp_path / "devmail"
    app = app_factory(MAIL_BACKEND="file", MAIL_DIR=str(mail_dir))
    subject_id = _load_story(app, extra=1)
    deliver(app)  # the demo's own notices
    with app.app_context():
        requests.file(
            type="access", member_id=demo.STORY_MEMBER, channel="api", verified=True, actor="t"
        )
        db.session.commit()
    deliver(app)
    folder = mail_dir / subject_id
    assert any(folder.glob("*.eml"))
    others = [p for p in mail_dir.glob("*/*.eml") if p.parent != folder]
    rid = _file_erasure(app)
    with app.app_context():
        erasure.run(rid)
    assert not folder.exists()
    assert all(p.exists() for p in others)  # nobody else's mail goes
    # Files older than a week go whenever mail is written.
    old = mail_dir / "another-subject" / "old.eml"
    old.parent.mkdir()
    old.write_bytes(b"To: someone@example.org\n\nold")
    os.utime(old, (0, 0))
    deliver(app)  # the last email, to the erased person (it carries their record key)
    assert not old.exists()
