"""Rights requests through the API: the platform files them for its members, reads them (and,
once completed, their results), lists them and withdraws them at the member's wish."""

from flask import g, request, url_for

from rights.erasure import erasure, receipts
from rights.errors import Forbidden
from rights.ledger import apikeys, transparency
from rights.lifecycle import requests
from web.api import schemas
from web.api.blueprint import bp
from web.api.idempotency import idempotent
from web.api.keys import actor, filed_by_this_key, reads_all, request_of_this_key, require
from web.api.responses import RequestOut, RequestPageOut

TAGS = ["requests"]

# A filed request (its id in the 201 body) leads to reading it, its downloads, withdrawing it.
REQUEST_LINKS = {
    name: {"operationId": operation_id, "parameters": {"request_id": "$response.body#/id"}}
    for name, operation_id in {
        "GetRequest": "getRequest",
        "GetRequestReport": "getRequestReport",
        "GetRequestExport": "getRequestExport",
        "GetRequestExportZip": "getRequestExportZip",
        "WithdrawRequest": "withdrawRequest",
    }.items()
}
# What every key that may see a request sees of it (RequestOut writes them).
METADATA = ("id", "reference", "type", "status", "channel", "received_at", "due_at")


def _shown(req, record_key: str | None = None) -> dict:
    """The request as this key may see it, for RequestOut: whole for the key that filed it;
    for a key with ``requests:read:all``, its metadata only (no free text such as an
    extension's reason, and no result: the data goes only to the service that filed for its
    member)."""
    own = filed_by_this_key(req)
    out = {name: getattr(req, name) for name in METADATA}
    out["completed_at"] = req.completed_at
    out["extended"] = None
    if req.extended_at is not None:
        out["extended"] = {"at": req.extended_at, "months": req.extension_months}
        if req.regime == "ccpa":
            out["extended"]["days"] = 45
        if own:
            out["extended"]["reason"] = requests.extension_reason(req)
    if req.status == "completed":
        out["result"] = _result(req, record_key) if own else {"completed_at": req.completed_at}
    return out


def _result(req, record_key: str | None) -> dict:
    """A completed request's result, for the key that filed it."""
    result = {"completed_at": req.completed_at}
    if req.type in ("access", "portability") and not requests.downloads_available(req):
        result["downloads"] = "expired"
    elif req.type == "access":
        result["report_url"] = url_for("api.get_request_report", request_id=req.id)
        result["expires_at"] = req.downloads_expire_at
    elif req.type == "erasure":
        receipt = erasure.receipt_for(req)
        if receipt is not None:
            result["receipt"] = receipt.jws
            placement = receipts.log_placement(receipt)
            if placement is not None:
                result["transparency_log"] = {
                    "leaf_index": placement.index,
                    "tree_size": placement.size,
                    "leaf_hash": transparency.leaf_hash_of(receipt.jws).hex(),
                }
        if record_key is not None:
            result["record_key"] = record_key
    elif req.type == "portability":
        result["export_json_url"] = url_for("api.get_request_export", request_id=req.id)
        result["export_zip_url"] = url_for("api.get_request_export_zip", request_id=req.id)
        result["expires_at"] = req.downloads_expire_at
    return result


@bp.post("/requests", tags=TAGS)
@require("requests:write")
@idempotent
@bp.response(201, RequestOut, description="Filed")
@bp.doc(responses={201: {"links": REQUEST_LINKS}})
@bp.arguments(schemas.RequestIn)
def file_request(data):
    """File a rights request for a member.

    Scope requests:write; verified=true needs requests:verified.
    """
    if data["verified"] and not apikeys.has_scope(g.api_key, "requests:verified"):
        raise Forbidden(
            "This key may not file requests as verified (scope requests:verified).",
            {"verified": ["needs scope requests:verified"]},
        )
    req = requests.file(
        type=data["type"],
        email=data["email"],
        member_id=data["member_id"],
        details=schemas.request_details(data),
        channel="api",
        verified=data["verified"],
        actor=actor(),
        api_key_id=g.api_key.id,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _shown(req)


@bp.get("/requests/<request_id>", tags=TAGS)
@require("requests:read")
@bp.declares(404)
@bp.response(200, RequestOut, description="The request")
def get_request(request_id: str):
    """A request; once completed, 'result' links to the report or export.

    A request filed through another key is not found (404), unless this key has scope
    requests:read:all, which shows its metadata.
    """
    req = request_of_this_key(request_id, metadata=True)
    record_key = None
    if filed_by_this_key(req) and req.type == "erasure" and req.status == "completed":
        receipt = erasure.receipt_for(req)
        # The first read after completion only, and only here (never in a list): the key's
        # sealed copy is wiped as it is shown (committed with this answer), so it is kept
        # nowhere else.
        record_key = erasure.reveal_record_key(receipt) if receipt is not None else None
    return _shown(req, record_key=record_key)


@bp.post("/requests/<request_id>/withdraw", tags=TAGS)
@require("requests:write")
@idempotent
@bp.declares(404)
@bp.response(200, RequestOut, description="Withdrawn")
def withdraw_request(request_id: str):
    """Withdraw a request at the member's wish (scope requests:write); the subject is told.

    A request that is closed, or an erasure already under way, cannot be withdrawn (409).
    """
    req = request_of_this_key(request_id)
    requests.withdraw_for_member(req, actor=actor())
    return _shown(req)


@bp.get("/requests", tags=TAGS)
@require("requests:read")
@bp.response(200, RequestPageOut, description="One page")
@bp.arguments(schemas.RequestListIn, location="query")
def list_requests(filters):
    """List requests, newest first (scope requests:read).

    The requests this key filed; every request's metadata with requests:read:all.
    """
    if not reads_all():
        filters["api_key_id"] = g.api_key.id
    page = requests.search(**filters)
    return {
        "items": [_shown(r) for r in page.items],
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
    }
