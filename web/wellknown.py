"""``/.well-known/``: the public key set that receipts and statements verify against."""

from flask import Blueprint, jsonify

from rights.ledger import signing

bp = Blueprint("wellknown", __name__)


@bp.get("/.well-known/jwks.json")
def jwks():
    """Every signing key ever used, current and retired (RFC 7517 JWK Set)."""
    response = jsonify(signing.jwks())
    # Public and the same for everyone: cacheable, readable from any origin. Five minutes
    # bounds how long a verifier may miss a freshly rotated key.
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
