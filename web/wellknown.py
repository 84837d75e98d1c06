"""``/.well-known/``: the public key set that receipts and statements verify against, and the
transparency log's checkpoints, verifier keys and proofs (rights/ledger/transparency.py).

Everything here is public and the same for everyone: no session, readable from any origin.
Proofs are asked for by hash and size only. A leaf hash names no one and can only be computed
from the signed document itself, so asking whether one is in the log tells nothing to anyone
who does not already hold the document."""

import base64
import binascii
import re

from flask import Blueprint, Response, jsonify, request

from rights.ledger import signing, transparency
from web.api.errors import error_response

bp = Blueprint("wellknown", __name__)
LOG = "/.well-known/transparency"
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _public(response: Response, max_age: int) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.after_request
def _readable_from_anywhere(response: Response) -> Response:
    """Error answers too: a verifier in a browser on another origin reads why (a 404's
    "no such leaf", a 400's fields), not a CORS failure."""
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    return response


@bp.get("/.well-known/jwks.json")
def jwks():
    """Every signing key ever used, current and retired (RFC 7517 JWK Set)."""
    # Five minutes bounds how long a verifier may miss a freshly rotated key.
    return _public(jsonify(signing.jwks()), 300)


@bp.get(f"{LOG}/checkpoint")
def log_checkpoint():
    """The latest signed checkpoint (C2SP tlog-checkpoint, a signed note), or with ``?size=N``
    the one signed at that size."""
    size = request.args.get("size")
    if size is None:
        row = transparency.latest()
    else:
        number = _size(size)
        if number is None:
            return _bad("size", "The size must be a whole number of at least 1.")
        row = transparency.checkpoint(number)
    if row is None:
        return error_response(404, "not_found", "The log has published no checkpoint of that size.")
    # The latest changes as receipts are issued; an older one never does.
    return _public(Response(row.note, mimetype="text/plain"), 10 if size is None else 86400)


@bp.get(f"{LOG}/keys")
def log_keys():
    """The verifier keys of the checkpoints' signatures, newest first, one per line (C2SP
    signed-note ``<name>+<key id>+<key>``)."""
    body = "".join(f"{key}\n" for key in transparency.verifier_keys())
    return _public(Response(body, mimetype="text/plain"), 300)


@bp.get(f"{LOG}/proof/inclusion")
def log_inclusion():
    """``?leaf=<leaf hash, hex or base64>&size=N``: the RFC 9162 inclusion proof (audit path)
    of that leaf in the tree of N leaves (default: the latest checkpoint's)."""
    leaf = _hash(request.args.get("leaf", ""))
    if leaf is None:
        return _bad(
            "leaf", "Give the leaf hash, SHA-256(0x00 || SHA-256(document)), in hex or base64."
        )
    size = request.args.get("size")
    number = None if size is None else _size(size)
    if size is not None and number is None:
        return _bad("size", "The size must be a whole number of at least 1.")
    try:
        proof = transparency.inclusion(leaf, number)
    except transparency.LogError as exc:
        return error_response(404, "not_found", str(exc))
    proof["inclusion_path"] = _b64(proof["inclusion_path"])
    return _public(jsonify(proof), 10 if size is None else 86400)


@bp.get(f"{LOG}/proof/consistency")
def log_consistency():
    """``?from=M&to=N``: the RFC 9162 consistency proof that the tree of N leaves (default:
    the latest checkpoint's) extends the tree of M."""
    first = _size(request.args.get("from", ""))
    if first is None:
        return _bad("from", "Give the older tree's size, a whole number of at least 1.")
    to = request.args.get("to")
    second = None if to is None else _size(to)
    if to is not None and second is None:
        return _bad("to", "The newer tree's size must be a whole number of at least 1.")
    try:
        proof = transparency.consistency(first, second)
    except transparency.LogError as exc:
        return error_response(404, "not_found", str(exc))
    proof["consistency_path"] = _b64(proof["consistency_path"])
    return _public(jsonify(proof), 10 if to is None else 86400)


def _bad(field: str, message: str):
    return error_response(400, "bad_request", message, {field: [message]})


MAX_SIZE = 2**63 - 1  # the largest index either database stores


def _size(text: str) -> int | None:
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_SIZE else None


def _hash(text: str) -> bytes | None:
    """32 bytes from hex (64 digits) or base64 (standard or URL-safe, padded or not)."""
    text = text.strip()
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if len(text) in (43, 44):
        try:
            raw = base64.b64decode(
                text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
            )
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == 32 else None
    return None


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]
