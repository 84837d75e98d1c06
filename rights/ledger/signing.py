"""Signed documents: deletion receipts and holdings statements as JWS, and the keys behind them.

- Keys are Ed25519, kept in the key store (``SigningKey``): the private key sealed with the
  key-encryption key (bound to its ``kid``), the public key as a JWK. Signing uses the newest
  unretired key; :func:`rotate` adds a key and retires the previous one. Retired keys are never
  deleted and stay in :func:`jwks`, so everything ever signed verifies forever.
- ``kid`` is the RFC 7638 thumbprint of the public key: derived from the key itself, so anyone can
  recompute it from the JWKS entry, two keys can never share one, and it needs no counter.
- Documents are JWS compact serialization, ``alg`` ``EdDSA`` (RFC 8037) over Ed25519, protected
  header exactly ``{"alg", "kid", "typ"}``, payload canonical JSON (sorted keys, compact, UTF-8).
  They verify with any JOSE library against the published JWKS alone.

Why ``EdDSA`` and not RFC 9864's fully-specified ``Ed25519``: the documents must verify with
mainstream libraries as deployed (PyJWT knows only ``EdDSA``), and receipts are kept for years.
joserfc marks ``EdDSA`` deprecated and emits a ``SecurityWarning`` each time its registry hands
the algorithm out; :class:`_EdDSARegistry` hands it out itself (and nothing else), which also
pins verification to the one algorithm we sign with (no ``none``, no HMAC confusion).
"""

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from joserfc import jwa, jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import OKPKey
from sqlalchemy import select

from rights.errors import InvalidSignature
from rights.ledger import audit
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import SigningKey

ALG = "EdDSA"
CRV = "Ed25519"
RECEIPT_TYP = "lethe-receipt+jws"
STATEMENT_TYP = "lethe-statement+jws"
SYSTEM_ACTOR = "system"

_HEADER = {"alg", "kid", "typ"}
_PUBLIC_MEMBERS = ("kty", "crv", "x", "kid", "use", "alg")


class _EdDSARegistry(jws.JWSRegistry):
    """A joserfc registry that allows exactly ``EdDSA``.

    The stock registry (even with ``algorithms=["EdDSA"]``) warns on every call that RFC 9864
    deprecates the name; we use it on purpose (see the module docstring). Returning the
    algorithm here avoids muting warnings with ``warnings.catch_warnings``, which swaps the
    process-wide filter list and is not safe with concurrent requests.
    """

    # joserfc refuses payloads over 128 kB on extraction; a statement for a subject with many
    # retained items may be larger. Still bounded: this parses untrusted input.
    max_payload_length = 4_000_000

    def get_alg(self, name: str) -> jws.JWSAlgModel:
        if name != ALG:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return jwa.EdDSA


_REGISTRY = _EdDSARegistry()


def canonical_json(payload: dict) -> bytes:
    """The signed bytes of a payload: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _seal_label(kid: str) -> str:
    # Bound to the kid: a sealed private key copied to another row does not open.
    return f"signing-key:{kid}"


def _new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    key = OKPKey.import_key(private)
    public, kid = key.as_dict(private=False), key.thumbprint()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    row = SigningKey(
        kid=kid,
        algorithm=ALG,
        private_key_enc=vault.seal(_seal_label(kid), raw),
        public_jwk={
            "kty": "OKP",
            "crv": CRV,
            "x": public["x"],
            "kid": kid,
            "use": "sig",
            "alg": ALG,
        },
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    return row


def _unretired() -> list[SigningKey]:
    return list(
        db.session.execute(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
        ).scalars()
    )


def current_key() -> SigningKey:
    """The key that signs now: the newest unretired one. The first key is made on demand
    (flushes, does not commit; audited as ``signing_key.created``).

    Two processes making the first key at once leave two unretired keys; both are published,
    so both signatures verify, and the next :func:`rotate` retires them all.
    """
    keys = _unretired()
    if keys:
        return keys[0]
    row = _new_key()
    audit.record(
        SYSTEM_ACTOR,
        "signing_key.created",
        target=row.kid,
        details={"algorithm": ALG, "crv": CRV, "reason": "first key"},
    )
    return row


def rotate(actor: str) -> str:
    """Add a signing key and retire every other unretired one; returns the new ``kid``.

    Retired keys stay published, so what they signed keeps verifying (flushes, does not commit;
    audited as ``signing_key.rotated``).
    """
    previous = _unretired()
    row = _new_key()
    now = utcnow()
    for old in previous:
        old.retired_at = now
    db.session.flush()
    audit.record(
        actor,
        "signing_key.rotated",
        target=row.kid,
        details={"algorithm": ALG, "crv": CRV, "retired": [old.kid for old in previous]},
    )
    return row.kid


def _private_key(row: SigningKey) -> OKPKey:
    return OKPKey.import_key(ed25519_private_key(row))


def ed25519_private_key(row: SigningKey) -> Ed25519PrivateKey:
    """The key's private half, unsealed (for the transparency log's note signatures)."""
    return Ed25519PrivateKey.from_private_bytes(
        vault.unseal(_seal_label(row.kid), row.private_key_enc)
    )


def raw_public_key(row: SigningKey) -> bytes:
    """The key's 32-byte Ed25519 public key (the JWK's ``x``)."""
    x = row.public_jwk["x"]
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))


def sign(payload: dict, typ: str) -> str:
    """Sign ``payload`` (JSON-native values only) as a JWS compact serialization with the
    current key; the protected header is exactly ``{"alg": "EdDSA", "kid", "typ"}``.

    Use :data:`RECEIPT_TYP` or :data:`STATEMENT_TYP` for ``typ``. May create the first key
    (flushes, does not commit): commit with the document that carries the signature.
    """
    if not isinstance(payload, dict):
        raise TypeError("payload must be a dict")
    if not isinstance(typ, str) or not typ:
        raise ValueError("typ must be a non-empty string")
    row = current_key()
    protected = {"alg": ALG, "kid": row.kid, "typ": typ}
    return jws.serialize_compact(
        protected, canonical_json(payload), _private_key(row), registry=_REGISTRY
    )


def _public_jwk(row: SigningKey) -> dict:
    # Copy only public members: whatever else a row might hold never reaches the JWKS.
    return {name: row.public_jwk[name] for name in _PUBLIC_MEMBERS if name in row.public_jwk}


def jwks() -> dict:
    """The JWKS document: every signing key ever used, current and retired, newest first.
    Reads only (an empty set before the first signature)."""
    return _key_store_jwks()


def _key_store_jwks() -> dict:
    # Named apart from jwks(): verify()'s ``jwks`` parameter shadows the public name.
    rows = db.session.execute(
        select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
    ).scalars()
    return {"keys": [_public_jwk(row) for row in rows]}


def _verification_key(kid: str, key_set: Any) -> OKPKey:
    keys = key_set.get("keys") if isinstance(key_set, dict) else None
    if not isinstance(keys, list):
        raise InvalidSignature("The key set is not a JWKS document (no 'keys' list).", "malformed")
    shown = kid[:64]
    for entry in keys:
        if not isinstance(entry, dict) or entry.get("kid") != kid:
            continue
        usable = (
            entry.get("kty") == "OKP"
            and entry.get("crv") == CRV
            and isinstance(entry.get("x"), str)
            and entry.get("alg", ALG) == ALG
            and entry.get("use", "sig") == "sig"
        )
        if usable:
            try:
                return OKPKey.import_key({"kty": "OKP", "crv": CRV, "x": entry["x"]})
            except (JoseError, ValueError):
                pass
        raise InvalidSignature(f"Key {shown!r} is not an Ed25519 signing key.", "unknown_key")
    raise InvalidSignature(
        f"Signed with key {shown!r}, which is not in the key set.", "unknown_key"
    )


def verify(token: str, expected_typ: str, jwks: dict | None = None) -> dict:
    """Verify a document and return its payload.

    Checks, in order: a well-formed compact JWS whose protected header is exactly ``alg``
    (``EdDSA``), ``kid`` and ``typ``; a ``kid`` found in ``jwks`` (a JWKS document; default the
    key store's, current and retired keys); the signature; ``typ == expected_typ``; a JSON
    object payload. Raises :class:`InvalidSignature` (with a ``reason``) on any failure.
    """
    malformed = InvalidSignature(
        "This is not a signed Lethe document (not a well-formed JWS).", "malformed"
    )
    if not isinstance(token, str):
        raise malformed
    try:
        obj = jws.extract_compact(token.strip().encode("ascii"), registry=_REGISTRY)
        header = obj.headers()
    except (JoseError, ValueError, TypeError):  # UnicodeError is a ValueError
        raise malformed from None
    if (
        set(header) != _HEADER
        or header["alg"] != ALG
        or not isinstance(header["kid"], str)
        or not isinstance(header["typ"], str)
    ):
        raise malformed

    key = _verification_key(header["kid"], _key_store_jwks() if jwks is None else jwks)
    try:
        valid = jws.validate_compact(obj, key, registry=_REGISTRY)
    except JoseError:
        valid = False
    if not valid:
        raise InvalidSignature(
            "The signature does not match: the document was altered, or not signed by this key.",
            "bad_signature",
        )
    # After the signature: the type named here is authentic.
    if header["typ"] != expected_typ:
        raise InvalidSignature(
            f"This is a {header['typ']!r} document, not a {expected_typ!r}.", "wrong_type"
        )
    try:
        payload = json.loads(obj.payload)
    except ValueError:
        raise malformed from None
    if not isinstance(payload, dict):
        raise malformed
    return payload


def all_keys() -> list[SigningKey]:
    """Every signing key, newest first (retired ones stay published in the JWKS)."""
    return list(
        db.session.execute(
            select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)
        ).scalars()
    )


def claims_of(token: str) -> dict:
    """The payload of a JWS Lethe signed and stored itself (not checked: for checking a token
    from outside, use :func:`verify`)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
