"""The JSON API for the platform's services (``/api/v1``), bearer API keys with scopes."""

import functools

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from rights.access import access, portability
from rights.erasure import erasure, statements
from rights.errors import Forbidden, NotFound, RightsError
from rights.holdings import records
from rights.ledger import apikeys, audit
from rights.lifecycle import idempotency, requests
from rights.recipients import disclosure_list, webhooks
from storage.db import db
from web.api import errors, schemas
from web.api.openapi import openapi_document
from web.extensions import limiter
from web.validation import clean_text

bp = Blueprint("api", __name__)
bp.register_error_handler(ValidationError, errors.validation_error)
bp.register_error_handler(RightsError, errors.rights_error)


@bp.errorhandler(IntegrityError)
def _integrity_error(exc):
    # Two writers created the same record at the same moment: the loser retries and updates.
    db.session.rollback()
    return errors.error_response(
        409, "conflict", "A concurrent request changed the same record; retry the request."
    )


def require(scope: str):
    """Bearer key with ``scope``: 401 without a valid key, 403 without the scope."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            key = header[7:].strip() if header[:7].lower() == "bearer " else ""
            api_key = apikeys.authenticate(key) if key else None
            if api_key is None:
                resp = errors.error_response(401, "unauthorized", "A valid API key is required.")
                resp[0].headers["WWW-Authenticate"] = 'Bearer realm="lethe"'
                return resp
            if not apikeys.has_scope(api_key, scope):
                return errors.error_response(403, "forbidden", f"This key lacks scope '{scope}'.")
            g.api_key = api_key
            return view(*args, **kwargs)

        return inner

    return wrap


def _parsed_body():
    """The JSON body, or None when it is missing, not JSON, or nested too deeply to parse."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def json_body() -> dict:
    body = _parsed_body()
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["the body must be a JSON object"]})
    bad = {
        str(name): ["must be text without NUL characters or unpaired surrogates"]
        for name, value in body.items()
        if not (clean_text(name) and clean_text(value))
    }
    if bad:
        raise ValidationError(bad)
    return body


def idempotent(view):
    """Honour ``Idempotency-Key``: replay the first answer to a retried POST.

    The view returns ``(body, status)`` and does not commit; this commits the record and the
    stored answer together. A concurrent duplicate loses the unique-key race (when its view
    flushes, or at commit), rolls back and gets the winner's answer.
    """

    @functools.wraps(view)
    def inner(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        body = _parsed_body()
        if key is None:
            payload, status = view(*args, **kwargs)
            db.session.commit()
            return jsonify(payload), status
        api_key_id = g.api_key.id
        idempotency.claim(api_key_id, key)
        stored = idempotency.lookup(api_key_id, key, request.method, request.path, body)
        if stored:
            return _replay(*stored)
        try:
            payload, status = view(*args, **kwargs)
            idempotency.remember(
                api_key_id, key, request.method, request.path, body, status, payload
            )
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            stored = idempotency.lookup(api_key_id, key, request.method, request.path, body)
            if not stored:
                raise
            return _replay(*stored)
        return jsonify(payload), status

    return inner


def _replay(status: int, payload: dict):
    resp = jsonify(payload)
    resp.headers["Idempotent-Replayed"] = "true"
    return resp, status


def _provenance(data: dict) -> dict:
    return {"source": data.pop("source"), "actor": data.pop("actor")}


def _ingest(schema, upsert, kind: str):
    data = schema().load(json_body())
    record, created = upsert(data, **_provenance(data))
    out = schemas.RecordOut().dump(record)
    out["kind"] = kind
    return out, 201 if created else 200


@bp.post("/members")
@require("records:write")
@idempotent
def ingest_member():
    return _ingest(schemas.MemberIn, records.upsert_member, "member")


@bp.post("/perk-awards")
@require("records:write")
@idempotent
def ingest_award():
    return _ingest(schemas.PerkAwardIn, records.upsert_award, "perk_award")


@bp.post("/disclosures")
@require("records:write")
@idempotent
def ingest_disclosure():
    return _ingest(schemas.DisclosureIn, records.upsert_disclosure, "disclosure")


@bp.post("/promotions")
@require("records:write")
@idempotent
def ingest_promotion():
    return _ingest(schemas.PromotionIn, records.upsert_promotion, "promotion")


@bp.post("/consents")
@require("records:write")
@idempotent
def ingest_consent():
    return _ingest(schemas.ConsentIn, records.upsert_consent, "consent")


def _request_out(req, record_key: str | None = None) -> dict:
    """The request as this key may see it: whole for the key that filed it; for a key with
    ``requests:read:all``, its metadata only (no free text such as an extension's reason, and
    no result: the data goes only to the service that filed for its member)."""
    own = _filed_by_this_key(req)
    out = schemas.RequestOut().dump(req)
    if not own and out.get("extended"):
        out["extended"].pop("reason", None)
    if req.status == "completed":
        result = {"completed_at": out["completed_at"]}
        if not own:
            pass
        elif req.type in ("access", "portability") and not requests.downloads_available(req):
            result["downloads"] = "expired"
        elif req.type == "access":
            result["report_url"] = url_for("api.request_report", request_id=req.id)
            result["expires_at"] = req.downloads_expire_at.isoformat()
        elif req.type == "erasure":
            receipt = erasure.receipt_for(req)
            if receipt is not None:
                result["receipt"] = receipt.jws
            if record_key is not None:
                result["record_key"] = record_key
        elif req.type == "portability":
            result["export_json_url"] = url_for("api.request_export", request_id=req.id)
            result["export_zip_url"] = url_for("api.request_export_zip", request_id=req.id)
            result["expires_at"] = req.downloads_expire_at.isoformat()
        out["result"] = result
    return out


@bp.post("/requests")
@require("requests:write")
@idempotent
def create_request():
    data = schemas.RequestIn().load(json_body())
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
        actor=_actor(),
        api_key_id=g.api_key.id,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _request_out(req), 201


def _get_request(request_id: str, *, metadata: bool = False):
    """A request this key filed (or, with ``metadata`` and scope ``requests:read:all``, any
    request). Every other id — another service's request, a request made on the web form,
    which is the subject's alone, or no request at all — is the same 404."""
    if not clean_text(request_id):
        raise NotFound("No such request.")  # a NUL in the path cannot be an id
    req = requests.get(request_id)
    if not _filed_by_this_key(req) and not (metadata and _reads_all()):
        raise NotFound("No such request.")
    return req


def _reads_all() -> bool:
    return apikeys.has_scope(g.api_key, "requests:read:all")


@bp.get("/requests/<request_id>")
@require("requests:read")
def get_request(request_id: str):
    req = _get_request(request_id, metadata=True)
    record_key = None
    if _filed_by_this_key(req) and req.type == "erasure" and req.status == "completed":
        receipt = erasure.receipt_for(req)
        # The first read after completion only, and only here (never in a list): the key's
        # sealed copy is wiped as it is shown, so it is kept nowhere else.
        record_key = erasure.reveal_record_key(receipt) if receipt is not None else None
        if record_key is not None:
            db.session.commit()
    return jsonify(_request_out(req, record_key=record_key))


@bp.post("/requests/<request_id>/withdraw")
@require("requests:write")
@idempotent
def withdraw_request(request_id: str):
    req = _get_request(request_id)
    requests.withdraw_for_member(req, actor=_actor())
    return _request_out(req), 200


@bp.get("/requests")
@require("requests:read")
def list_requests():
    filters = schemas.RequestListIn().load(request.args)
    if not _reads_all():
        filters["api_key_id"] = g.api_key.id
    page = requests.search(**filters)
    return jsonify(
        {
            "items": [_request_out(r) for r in page.items],
            "page": page.page,
            "per_page": page.per_page,
            "total": page.total,
        }
    )


def _actor() -> str:
    return f"apikey:{g.api_key.name}"


def _filed_by_this_key(req) -> bool:
    return req.api_key_id is not None and req.api_key_id == g.api_key.id


def _downloadable(request_id: str, kind: str):
    """Reports and exports go to the key that filed the request for its logged-in member;
    requests made on the web form are the subject's own and never leave through the API."""
    req = _get_request(request_id)
    if req.type != kind or not _filed_by_this_key(req) or not requests.downloads_available(req):
        raise NotFound("No download for this request (not completed, or expired).")
    requests.record_download(req, f"{kind} ({request.path.rsplit('/', 1)[-1]})", actor=_actor())
    db.session.commit()
    # Loaded again after the commit: the body is streamed from attributes already in memory.
    return requests.get(request_id)


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/requests/<request_id>/report")
@require("requests:read")
def request_report(request_id: str):
    req = _downloadable(request_id, "access")
    return _no_store(
        Response(stream_with_context(access.stream_json(req)), mimetype="application/json")
    )


@bp.get("/requests/<request_id>/export")
@require("requests:read")
def request_export(request_id: str):
    req = _downloadable(request_id, "portability")
    return _no_store(
        Response(stream_with_context(portability.stream_json(req)), mimetype="application/json")
    )


@bp.get("/requests/<request_id>/export.zip")
@require("requests:read")
def request_export_zip(request_id: str):
    req = _downloadable(request_id, "portability")
    return _no_store(
        send_file(
            portability.build_zip(req),
            mimetype="application/zip",
            as_attachment=True,
            download_name=f"{req.reference}.zip",
        )
    )


@bp.get("/disclosures/export")
@require("disclosures:read")
def disclosures_export():
    """The FTC disclosure list, by brand or campaign, as JSON or CSV (streamed)."""
    args = schemas.DisclosureExportIn().load(request.args)
    brand, campaign = args.get("brand"), args.get("campaign")
    rows = disclosure_list.entries(brand=brand, campaign=campaign)
    audit.record(_actor(), "disclosures.exported", details={"brand": brand, "campaign": campaign})
    db.session.commit()
    if args["format"] == "csv":
        body, mimetype = disclosure_list.stream_csv(rows), "text/csv"
    else:
        body = disclosure_list.stream_json(rows, brand=brand, campaign=campaign)
        mimetype = "application/json"
    return _no_store(Response(stream_with_context(body), mimetype=mimetype))


@bp.post("/recipient-identifiers")
@require("records:write")
@idempotent
def recipient_identifier():
    """What a subscriber (brand, ad system) calls a member, so its webhooks can say so."""
    data = schemas.RecipientIdentifierIn().load(json_body())
    member = records.member_for(data["member_id"])
    held = webhooks.set_identifier(
        data["subscriber_id"], member.subject_id, data["identifier"], actor=_actor()
    )
    return {"subscriber_id": data["subscriber_id"], "recorded": held}, 200


@bp.post("/deliveries/<delivery_id>/confirm")
@require("deliveries:confirm")
@idempotent
def delivery_confirm(delivery_id: str):
    """A subscriber confirms it has acted on a delivery (Art. 19)."""
    delivery = webhooks.confirm(delivery_id, g.api_key)
    return {
        "id": delivery.id,
        "status": delivery.status,
        "confirmed_at": delivery.confirmed_at.isoformat(),
    }, 200


@bp.post("/statements")
@limiter.limit(lambda: current_app.config["RATELIMIT_STATEMENTS"])
def statement():
    """Public: a record key in the body (never a URL) -> a freshly signed holdings statement.
    Unknown and malformed keys get one and the same 404."""
    data = schemas.StatementIn().load(json_body())
    found = statements.for_record_key(data["record_key"])
    if found is None:
        db.session.rollback()
        raise NotFound("No record matches this key.")
    token, claims = found
    db.session.commit()
    resp = jsonify(
        {
            "statement": token,
            "holds_nothing": claims["holds_nothing"],
            "held": claims["held"],
            "as_of": claims["as_of"],
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
