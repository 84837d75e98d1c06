"""Signed receipts and statements: EdDSA (Ed25519) JWS that any JOSE library verifies against the
published JWKS alone, keys that rotate without breaking old signatures, and a key store that
never holds a private key in clear."""

import base64
import json
from pathlib import Path

import jwt
import pytest
from joserfc import jwk as joserfc_jwk
from joserfc import jws as joserfc_jws
from joserfc.errors import SecurityWarning
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws
from sqlalchemy import select

from rights.errors import InvalidSignature, RightsError
from rights.ledger import signing
from storage.db import db
from storage.models import AuditEvent, SigningKey

PAYLOAD = {
    "receipt_id": "3f0c2a9e-0000-4000-8000-000000000001",
    "request_id": "5b1d7c44-0000-4000-8000-000000000002",
    "sub": "subj_9f2c",
    "erased_at": "2027-01-31T12:00:00+00:00",
    "categories": [
        {"category": "perk_awards", "action": "erased", "records": 3},
        {"category": "disclosures", "action": "retained", "exception": "Art. 17(3)(b)"},
    ],
    "note": "Zoë's café — non-ASCII survives",
}
JWKS_URL = "/.well-known/jwks.json"
PUBLIC_MEMBERS = {"kty", "crv", "x", "kid", "use", "alg"}


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(app, payload=PAYLOAD, typ=signing.RECEIPT_TYP) -> str:
    with app.app_context():
        token = signing.sign(payload, typ)
        db.session.commit()
    return token


def fetch_jwks(client) -> dict:
    resp = client.get(JWKS_URL)
    assert resp.status_code == 200
    return resp.get_json()


def verify_with_joserfc(token: str, jwks: dict) -> tuple[dict, dict]:
    key_set = joserfc_jwk.KeySet.import_key_set(jwks)
    # joserfc warns that RFC 9864 deprecates the name "EdDSA" (in favour of "Ed25519") on every
    # use; a verifier using joserfc sees this warning, and the signature still verifies.
    with pytest.warns(SecurityWarning, match="RFC 9864"):
        obj = joserfc_jws.deserialize_compact(token, key_set, algorithms=["EdDSA"])
    return obj.headers(), json.loads(obj.payload)


def verify_with_jwcrypto(token: str, jwks: dict) -> tuple[dict, dict]:
    key_set = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks))
    obj = jwcrypto_jws.JWS()
    obj.deserialize(token)
    obj.verify(key_set)  # picks the key by the header's kid; raises if it does not verify
    return obj.jose_header, json.loads(obj.payload)


def verify_with_pyjwt(token: str, jwks: dict) -> tuple[dict, dict]:
    key_set = jwt.PyJWKSet.from_dict(jwks)
    kid = jwt.get_unverified_header(token)["kid"]
    decoded = jwt.api_jws.PyJWS().decode_complete(token, key=key_set[kid], algorithms=["EdDSA"])
    return decoded["header"], json.loads(decoded["payload"])


VERIFIERS = [verify_with_joserfc, verify_with_jwcrypto, verify_with_pyjwt]


@pytest.mark.parametrize("verify_with", VERIFIERS, ids=["joserfc", "jwcrypto", "pyjwt"])
def test_a_receipt_verifies_with_each_library_from_the_published_jwks_alone(
    app, client, verify_with
):
    token = sign(app)
    jwks = fetch_jwks(client)

    header, payload = verify_with(token, jwks)

    assert payload == PAYLOAD
    assert header == {"alg": "EdDSA", "kid": jwks["keys"][0]["kid"], "typ": "lethe-receipt+jws"}


def test_the_token_is_compact_with_exactly_alg_kid_typ_and_a_canonical_payload(app):
    token = sign(app, typ=signing.STATEMENT_TYP)
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64d(header_b64))
    assert set(header) == {"alg", "kid", "typ"}
    assert header["alg"] == "EdDSA" and header["typ"] == "lethe-statement+jws"
    # Sorted keys, compact separators, UTF-8 (not \\u escapes).
    canonical = json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert b64d(payload_b64) == canonical.encode("utf-8")
    assert len(b64d(signature_b64)) == 64  # an Ed25519 signature
    with app.app_context():
        assert signing.verify(token, signing.STATEMENT_TYP) == PAYLOAD


def test_jwks_endpoint_is_public_cacheable_and_holds_public_keys_only(app, client):
    sign(app)
    resp = client.get(JWKS_URL)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    (key,) = resp.get_json()["keys"]
    assert set(key) == PUBLIC_MEMBERS and "d" not in key
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
    assert key["use"] == "sig" and key["alg"] == "EdDSA"
    # The kid is the RFC 7638 thumbprint: anyone can recompute it from the published key.
    assert key["kid"] == jwcrypto_jwk.JWK(**key).thumbprint()


def test_no_key_until_the_first_signature_then_one_key_reused_and_audited(app, client):
    assert fetch_jwks(client) == {"keys": []}
    first, second = sign(app), sign(app, {"n": 2})
    jwks = fetch_jwks(client)
    assert len(jwks["keys"]) == 1
    kid = jwks["keys"][0]["kid"]
    assert jwt.get_unverified_header(first)["kid"] == kid
    assert jwt.get_unverified_header(second)["kid"] == kid
    with app.app_context():
        (entry,) = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "signing_key.created")
        ).scalars()
        assert entry.target == kid and entry.actor == "system"
        assert set(entry.details) <= {"algorithm", "crv", "reason"}


def test_a_receipt_signed_before_rotation_still_verifies_after(app, client, runner):
    old_token = sign(app)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new_kid = result.output.strip()
    assert new_kid and new_kid != old_kid

    new_token = sign(app, {"after": "rotation"})
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid

    jwks = fetch_jwks(client)
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    for verify_with in VERIFIERS:
        assert verify_with(old_token, jwks)[1] == PAYLOAD
        assert verify_with(new_token, jwks)[1] == {"after": "rotation"}
    with app.app_context():
        assert signing.verify(old_token, signing.RECEIPT_TYP) == PAYLOAD
        assert signing.verify(old_token, signing.RECEIPT_TYP, jwks=jwks) == PAYLOAD
        assert db.session.get(SigningKey, old_kid).retired_at is not None
        assert db.session.get(SigningKey, new_kid).retired_at is None
        assert signing.current_key().kid == new_kid
        (entry,) = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "signing_key.rotated")
        ).scalars()
        assert entry.actor == "cli" and entry.target == new_kid
        assert entry.details["retired"] == [old_kid]


def test_rotating_before_any_key_just_makes_the_first(app):
    with app.app_context():
        kid = signing.rotate(actor="officer")
        db.session.commit()
        assert [k["kid"] for k in signing.jwks()["keys"]] == [kid]
        assert signing.current_key().kid == kid


def _reheader(token: str, **changes) -> str:
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = {**json.loads(b64d(header_b64)), **changes}
    return ".".join([b64e(json.dumps(header).encode()), payload_b64, signature_b64])


def _repayload(token: str, payload: dict) -> str:
    header_b64, _, signature_b64 = token.split(".")
    return ".".join([header_b64, b64e(json.dumps(payload).encode()), signature_b64])


def _reasons(app, token, typ=signing.RECEIPT_TYP, jwks=None) -> str:
    with app.app_context(), pytest.raises(InvalidSignature) as caught:
        signing.verify(token, typ, jwks=jwks)
    err = caught.value
    assert isinstance(err, RightsError) and err.code == "invalid_signature" and err.message
    return err.reason


def test_tampered_payload_fails(app):
    token = sign(app)
    assert _reasons(app, _repayload(token, {**PAYLOAD, "categories": []})) == "bad_signature"
    # Same claims, re-serialised differently: still not what was signed.
    assert _reasons(app, _repayload(token, PAYLOAD)) == "bad_signature"


def test_kid_swapped_to_another_published_key_fails(app, runner):
    token = sign(app)
    new_kid = runner.invoke(args=["keys", "rotate"]).output.strip()
    assert _reasons(app, _reheader(token, kid=new_kid)) == "bad_signature"


def test_unknown_kid_fails(app):
    token = sign(app)
    assert _reasons(app, _reheader(token, kid="not-a-key")) == "unknown_key"


def test_a_key_set_without_the_signing_key_fails(app, client, runner):
    token = sign(app)
    runner.invoke(args=["keys", "rotate"])
    jwks = fetch_jwks(client)
    newest_only = {"keys": jwks["keys"][:1]}
    assert _reasons(app, token, jwks=newest_only) == "unknown_key"
    assert _reasons(app, token, jwks={"nope": []}) == "malformed"


def test_wrong_typ_fails_both_ways(app):
    receipt = sign(app)
    statement = sign(app, typ=signing.STATEMENT_TYP)
    assert _reasons(app, receipt, typ=signing.STATEMENT_TYP) == "wrong_type"
    assert _reasons(app, statement, typ=signing.RECEIPT_TYP) == "wrong_type"
    # The header's typ is signed: rewriting it breaks the signature.
    forged = _reheader(statement, typ=signing.RECEIPT_TYP)
    assert _reasons(app, forged, typ=signing.RECEIPT_TYP) == "bad_signature"


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "a.b", "....", "ünïcode.x.y", "eyJ9.eyJ9.AAAA", None, 42],
)
def test_garbage_fails_as_malformed(app, garbage):
    sign(app)
    assert _reasons(app, garbage) == "malformed"


def test_other_algorithms_and_extra_headers_are_refused(app):
    token = sign(app)
    header_b64, payload_b64, signature_b64 = token.split(".")
    unsigned = _reheader(token, alg="none").rsplit(".", 1)[0] + "."
    assert _reasons(app, unsigned) == "malformed"
    assert _reasons(app, _reheader(token, alg="HS256")) == "malformed"
    assert _reasons(app, _reheader(token, alg="Ed25519")) == "malformed"
    assert _reasons(app, _reheader(token, b64=False)) == "malformed"
    assert _reasons(app, _reheader(token, jku="https://evil.example/jwks.json")) == "malformed"
    # No signature at all is a signature that does not match.
    assert _reasons(app, f"{header_b64}.{payload_b64}.") == "bad_signature"


def _sqlite_bytes(path: str) -> bytes:
    """A SQLite database's file and, while it is open, its write-ahead log."""
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())


def test_the_private_key_is_sealed_in_the_key_store_and_never_published(app, client):
    token = sign(app)
    with app.app_context():
        row = db.session.execute(select(SigningKey)).scalar_one()
        private_jwk = signing._private_key(row).as_dict(private=True)
        raw = b64d(private_jwk["d"])
        assert len(raw) == 32
        assert raw not in row.private_key_enc
        engine = db.engines["keystore"]
        if engine.dialect.name == "sqlite":
            stored = _sqlite_bytes(engine.url.database)
            assert row.public_jwk["x"].encode() in stored  # we are reading the right file
            assert raw not in stored and private_jwk["d"].encode() not in stored
        main = db.engines[None]
        if main.dialect.name == "sqlite":
            assert raw not in _sqlite_bytes(main.url.database)
    published = client.get(JWKS_URL).get_data()
    assert private_jwk["d"].encode() not in published and b'"d"' not in published
    # The key it holds is the key that signed.
    assert verify_with_pyjwt(token, json.loads(published))[1] == PAYLOAD


# --- flask receipts verify / statements verify ---------------------------------------------


def _files(tmp_path, client, token, **extra) -> tuple[Path, Path]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(fetch_jwks(client)))
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps({"receipt": token, "record_key": "rk_x", **extra}))
    return receipt_file, jwks_file


def test_cli_verifies_a_receipt_file_offline_with_a_jwks_file(app, app_factory, client, tmp_path):
    token = sign(app)
    receipt_file, jwks_file = _files(tmp_path, client, token)
    # A fresh install whose key store is empty (not even a table): only the files are read.
    elsewhere = app_factory(KEYSTORE_URL=f"sqlite:///{tmp_path / 'empty-keystore.db'}")
    runner = elsewhere.test_cli_runner()

    result = runner.invoke(args=["receipts", "verify", str(receipt_file), "--jwks", str(jwks_file)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PAYLOAD


def test_cli_verifies_a_bare_jws_against_the_key_store(app, runner, tmp_path):
    token = sign(app)
    bare = tmp_path / "receipt.jws"
    bare.write_text(token + "\n")
    result = runner.invoke(args=["receipts", "verify", str(bare)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PAYLOAD


def test_cli_fails_with_one_line_on_a_tampered_receipt_file(app, client, runner, tmp_path):
    token = sign(app)
    tampered = _repayload(token, {**PAYLOAD, "categories": []})
    receipt_file, jwks_file = _files(tmp_path, client, tampered)

    result = runner.invoke(args=["receipts", "verify", str(receipt_file), "--jwks", str(jwks_file)])

    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "does not verify" in line and "signature does not match" in line


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "neither a JWS nor valid JSON"),
        (json.dumps({"statement": "x.y.z"}), "no 'receipt' field"),
        ("garbage", "not a well-formed JWS"),
    ],
)
def test_cli_fails_with_one_line_on_unusable_files(runner, tmp_path, content, message):
    path = tmp_path / "receipt.json"
    path.write_text(content)
    result = runner.invoke(args=["receipts", "verify", str(path)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert message in line


def test_cli_fails_on_a_missing_file(runner, tmp_path):
    result = runner.invoke(args=["receipts", "verify", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "Cannot read receipt" in result.stderr


def test_cli_statements_verify_refuses_a_receipt(app, runner, tmp_path):
    statement_file = tmp_path / "statement.json"
    statement_file.write_text(json.dumps({"statement": sign(app, typ=signing.STATEMENT_TYP)}))
    ok = runner.invoke(args=["statements", "verify", str(statement_file)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == PAYLOAD

    receipt_file = tmp_path / "receipt.jws"
    receipt_file.write_text(sign(app))
    wrong = runner.invoke(args=["statements", "verify", str(receipt_file)])
    assert wrong.exit_code == 1
    assert "not a 'lethe-statement+jws'" in wrong.stderr
