"""Receipts and statements a person can read (issue 16): the request page's receipt, the
holdings statement and the downloaded receipt say in words what was erased, what is kept, why,
until when and who was told; anyone checks a receipt or a statement on /verify-receipt without
a command line, and a changed or foreign document is called out in words, never a 500."""

import base64
import html
import io
import json
import re

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from demo import loader as demo
from rights.erasure import erasure, statements
from rights.ledger import signing
from rights.lifecycle import requests
from storage.db import db
from storage.models import Member
from storage.processes import date_words

VERIFY = "/verify-receipt"
# Stored codes, and a consent's raw status where it is now only proof.
RAW = ("name_and_likeness", "signup-web", "email_marketing", "Status granted", "Status: granted")
GENUINE = "Genuine"
NOT_GENUINE = "Not genuine"


@pytest.fixture
def erased(app):
    """The demo's story member (a perk award, its disclosure-list entry, two consents given on
    the sign-up page), erased: the request's id and reference, the receipt, the record key,
    and a statement signed for that key."""
    with app.app_context():
        demo.load(extra_members=1)
        db.session.commit()
        assert db.session.execute(
            select(Member).where(Member.external_id == demo.STORY_MEMBER)
        ).scalar_one()
        req = requests.file(
            type="erasure",
            member_id=demo.STORY_MEMBER,
            channel="api",
            verified=True,
            actor="apikey:platform",
        )
        db.session.commit()
        receipt = erasure.run(req.id)
        record_key = erasure.reveal_record_key(receipt)
        db.session.commit()
        statement, statement_claims = statements.for_record_key(record_key)
        db.session.commit()
        return {
            "id": req.id,
            "reference": req.reference,
            "receipt": receipt.jws,
            "claims": signing.claims_of(receipt.jws),
            "record_key": record_key,
            "statement": statement,
            "statement_claims": statement_claims,
        }


def _text(resp) -> str:
    """A page as a person reads it: tags gone, entities undone, spaces collapsed."""
    body = resp.get_data(as_text=True)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _without_jws(resp) -> str:
    """The page's words, the signed document itself left out (it is base64 of raw claims)."""
    return re.sub(r"[A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{40,}", " ", _text(resp))


def _own_page(app, erased):
    client = app.test_client()
    with client.session_transaction() as session:
        session["grants"] = {erased["id"]: "9999-12-31T00:00:00+00:00"}
    return client, client.get(f"/requests/{erased['reference']}")


def _kept_until(claims: dict, category: str) -> str:
    (entry,) = [c for c in claims["categories"] if c["category"] == category]
    return date_words(entry["retain_until"])


def _consent_given_on(statement_claims: dict) -> str:
    (group,) = [g for g in statement_claims["held"] if g["category"] == "consents"]
    return date_words(group["records"][0]["granted_at"])


def _says_what_was_erased_and_kept(text: str, erased: dict) -> None:
    claims = erased["claims"]
    assert "What we erased" in text
    assert "1 account profile" in text and "2 topics you are said to influence" in text
    assert "What we kept, why, and until when" in text
    assert f"1 perk award: kept until {_kept_until(claims, 'perk_awards')}" in text
    assert "because the law requires us to keep it (Art. 17(3)(b)" in text
    assert f"2 consents: kept until {_kept_until(claims, 'consents')}" in text


def _no_raw_values(text: str) -> None:
    for raw in RAW:
        assert raw not in text, raw


# --- the request page's receipt ------------------------------------------------------------


def test_the_receipt_on_the_request_page_says_in_words_what_was_erased_kept_and_told(app, erased):
    _, resp = _own_page(app, erased)
    assert resp.status_code == 200
    text = _without_jws(resp)
    section = text[text.index("Your deletion receipt") :]
    _says_what_was_erased_and_kept(section, erased)
    # Each record still held is named, a consent as the proof it is now.
    assert "Your Nova X1 phone from Nova Mobile" in section
    given = _consent_given_on(erased["statement_claims"])
    assert (
        "Your consent to the use of your name and picture in promotions: kept as proof that "
        f"you gave consent on {given}; no longer used" in section
    )
    # Who the receipt says must be told, by name.
    for told in erased["claims"]["told"]["recipients"]:
        assert told["name"] in section
    _no_raw_values(text)
    # The signed receipt is there, for those who want it, with where to check it.
    page = resp.get_data(as_text=True)
    assert "For the technically minded: check this receipt" in page
    assert f'href="http://localhost{VERIFY}"' in page
    assert erased["receipt"] in page


# --- the holdings statement ----------------------------------------------------------------


def test_the_statement_says_in_words_what_is_kept_why_and_until_when(app, client, erased):
    resp = client.post("/records", data={"record_key": erased["record_key"]})
    assert resp.status_code == 200
    text = _without_jws(resp)
    assert "Your Nova X1 phone from Nova Mobile" in text
    assert "Your entry on the disclosure list for your Nova X1 phone" in text
    assert "because the law requires us to keep it (Art. 17(3)(b)" in text
    claims = erased["claims"]
    assert f"Kept until {_kept_until(claims, 'perk_awards')}" in text
    given = _consent_given_on(erased["statement_claims"])
    assert f"Kept as proof that you gave consent on {given}; no longer used" in text
    assert "Given through our sign-up page" in text
    assert "Who we told" in text
    _no_raw_values(text)
    page = resp.get_data(as_text=True)
    assert "For the technically minded: check this statement" in page
    assert VERIFY in page


# --- the receipt file ----------------------------------------------------------------------


def _receipt_file(client, erased, via: str):
    if via == "request page":
        with client.session_transaction() as session:
            session["grants"] = {erased["id"]: "9999-12-31T00:00:00+00:00"}
        return client.post(
            f"/requests/{erased['reference']}/receipt", data={"record_key": erased["record_key"]}
        )
    return client.post("/records", data={"record_key": erased["record_key"], "download": "receipt"})


@pytest.mark.parametrize("via", ["request page", "records page"])
def test_the_receipt_file_is_a_document_a_person_reads(client, erased, via):
    resp = _receipt_file(client, erased, via)
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    assert re.fullmatch(
        r'attachment; filename="deletion-receipt-[0-9a-f]{8}\.html"',
        resp.headers["Content-Disposition"],
    )
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_data(as_text=True)
    assert "flask receipts verify" not in body and "flask" not in body.lower()
    assert f"http://lethe.test{VERIFY}" in body
    assert erased["receipt"] in body
    assert erasure.format_record_key(erased["record_key"]) in body
    text = _without_jws(resp)
    _says_what_was_erased_and_kept(text, erased)
    assert "Who we told" in text
    _no_raw_values(text)


# --- the verification page -----------------------------------------------------------------


def test_the_verification_page_asks_for_a_paste_or_a_file(client):
    resp = client.get(VERIFY)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert 'type="file"' in page and "<textarea" in page and 'enctype="multipart/form-data"' in page


def test_a_real_receipt_pasted_is_genuine_and_read_out_in_words(client, erased):
    resp = client.post(VERIFY, data={"document": erased["receipt"]})
    assert resp.status_code == 200
    text = _without_jws(resp)
    assert GENUINE in text and NOT_GENUINE not in text
    assert "deletion receipt" in text
    assert "Signed by" in text and "http://lethe.test" in text
    assert date_words(erased["claims"]["erased_at"]) in text
    _says_what_was_erased_and_kept(text, erased)
    for told in erased["claims"]["told"]["recipients"]:
        assert told["name"] in text
    _no_raw_values(text)
    # Only what the document says: anyone may paste a receipt, and the page looks nobody up.
    assert "Nova X1 phone" not in text


def test_a_receipt_pasted_with_its_line_breaks_is_still_read(client, erased):
    token = erased["receipt"]
    wrapped = "\n".join(token[i : i + 76] for i in range(0, len(token), 76))
    resp = client.post(VERIFY, data={"document": f"  {wrapped}\n"})
    assert resp.status_code == 200 and GENUINE in _text(resp)


@pytest.mark.parametrize("via", ["request page", "records page"])
def test_the_downloaded_receipt_file_uploaded_is_genuine(client, erased, via):
    document = _receipt_file(client, erased, via).get_data()
    resp = client.post(
        VERIFY,
        data={"file": (io.BytesIO(document), "deletion-receipt.html")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200
    text = _text(resp)
    assert GENUINE in text and "deletion receipt" in text


def test_a_real_statement_uploaded_is_genuine_and_read_out_in_words(client, erased):
    resp = client.post(
        VERIFY,
        data={"file": (io.BytesIO(erased["statement"].encode()), "statement-1234abcd.jws")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200
    text = _without_jws(resp)
    assert GENUINE in text and "holdings statement" in text
    assert "Your Nova X1 phone from Nova Mobile" in text
    given = _consent_given_on(erased["statement_claims"])
    assert f"Kept as proof that you gave consent on {given}; no longer used" in text
    assert "Who we told" in text
    _no_raw_values(text)


def test_an_older_json_receipt_file_is_still_read(client, erased):
    """Receipt files downloaded before issue 16 were JSON with a "receipt" field."""
    old = json.dumps({"format": "lethe-deletion-receipt/1", "receipt": erased["receipt"]})
    resp = client.post(
        VERIFY,
        data={"file": (io.BytesIO(old.encode()), "deletion-receipt-1234abcd.json")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200 and GENUINE in _text(resp)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _changed_payload_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    at = bytes(raw).index(b'"records":1') + len('"records":')
    raw[at] = ord("0")  # one byte: a kept record said away
    return f"{header}.{_b64(bytes(raw))}.{signature}"


def _changed_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


def _foreign(token: str) -> str:
    """The same claims, signed with a key we never published."""
    key = Ed25519PrivateKey.generate()
    return jwt.api_jws.PyJWS().encode(
        signing.canonical_json(signing.claims_of(token)),
        key,
        algorithm="EdDSA",
        headers={"kid": "not-one-of-ours", "typ": signing.RECEIPT_TYP},
    )


@pytest.mark.parametrize(
    "tamper, says",
    [
        (_changed_payload_byte, "changed since we signed it"),
        (_changed_signature, "changed since we signed it"),
        (_foreign, "not signed by us"),
        (lambda token: "garbage", "not a receipt or statement of ours"),
        (lambda token: token.split(".")[0] + ".e30", "not a receipt or statement of ours"),
    ],
    ids=["payload byte", "signature", "foreign key", "garbage", "cut"],
)
def test_a_changed_or_foreign_document_is_not_genuine(client, erased, tamper, says):
    resp = client.post(VERIFY, data={"document": tamper(erased["receipt"])})
    assert resp.status_code == 422
    text = _text(resp)
    assert NOT_GENUINE in text and says in text
    assert GENUINE + "." not in text
    # Nothing of what the document claims is read out as if it were true.
    assert "What we erased" not in text


def test_a_changed_statement_file_is_not_genuine(client, erased):
    changed = _changed_signature(erased["statement"])
    resp = client.post(
        VERIFY,
        data={"file": (io.BytesIO(changed.encode()), "statement.jws")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    assert "changed since we signed it" in _text(resp)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"document": "   "},
        {"file": (io.BytesIO(b"\xff\xfe\x00binary\x80"), "photo.jpg")},
        {"file": (io.BytesIO(b""), "empty.html")},
    ],
    ids=["nothing", "blank", "binary file", "empty file"],
)
def test_nothing_usable_is_asked_for_again_in_words(client, data):
    resp = client.post(VERIFY, data=data, content_type="multipart/form-data")
    assert resp.status_code == 422
    text = _text(resp)
    assert "Paste" in text and ("not a receipt or statement of ours" in text or "Paste a" in text)


def test_a_document_signed_by_us_that_is_neither_is_named_for_what_it_is_not(app, client):
    with app.app_context():
        token = signing.sign({"hello": "world"}, "lethe-other+jws")
        db.session.commit()
    resp = client.post(VERIFY, data={"document": token})
    assert resp.status_code == 422
    assert "neither a deletion receipt nor a holdings statement" in _text(resp)
