"""Downloads: a completed request's access report and portability exports, to the key that
filed it, and the FTC disclosure list. All streamed, none cached."""

from flask import Response, request, send_file

from rights.access import access, portability
from rights.errors import NotFound
from rights.ledger import audit
from rights.lifecycle import requests
from rights.recipients import disclosure_list
from web.api import schemas
from web.api.blueprint import bp
from web.api.keys import actor, filed_by_this_key, request_of_this_key, require
from web.api.responses import DisclosureListOut
from web.streaming import streamed

TAGS = ["downloads"]
NO_STORE = {"Cache-Control": "no-store"}


def _downloadable(request_id: str, kind: str):
    """Reports and exports go to the key that filed the request for its logged-in member;
    requests made on the web form are the subject's own and never leave through the API."""
    req = request_of_this_key(request_id)
    if req.type != kind or not filed_by_this_key(req) or not requests.downloads_available(req):
        raise NotFound("No download for this request (not completed, or expired).")
    # Audited with the answer (committed before the body streams: web/transaction.py keeps
    # the loaded request as it is for the stream to read).
    requests.record_download(req, f"{kind} ({request.path.rsplit('/', 1)[-1]})", actor=actor())
    return req


def _streamed(body, mimetype: str) -> Response:
    return Response(streamed(body), mimetype=mimetype, headers=NO_STORE)


def _download(what: str, mimetype: str):
    """The one answer of a download: the file (its content not described further) or 404."""

    def decorator(view):
        view = bp.response(200, {}, content_type=mimetype, description=what)(view)
        return bp.declares(404)(view)

    return decorator


@bp.get("/requests/<request_id>/report", tags=TAGS)
@require("requests:read")
@_download("The access report (Art. 15)", "application/json")
def get_request_report(request_id: str):
    """The access report (Art. 15).

    Available until result.expires_at, to the key that filed the request. Never cached.
    """
    req = _downloadable(request_id, "access")
    return _streamed(access.stream_json(req), "application/json")


@bp.get("/requests/<request_id>/export", tags=TAGS)
@require("requests:read")
@_download("The portability export (Art. 20)", "application/json")
def get_request_export(request_id: str):
    """The portability export (Art. 20).

    Available until result.expires_at, to the key that filed the request. Never cached.
    """
    req = _downloadable(request_id, "portability")
    return _streamed(portability.stream_json(req), "application/json")


@bp.get("/requests/<request_id>/export.zip", tags=TAGS)
@require("requests:read")
@_download("The portability export as CSV files", "application/zip")
def get_request_export_zip(request_id: str):
    """The portability export as CSV files, zipped.

    Available until result.expires_at, to the key that filed the request. Never cached.
    """
    req = _downloadable(request_id, "portability")
    resp = send_file(
        portability.build_zip(req),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{req.reference}.zip",
    )
    resp.headers.update(NO_STORE)
    return resp


@bp.get("/disclosures/export", tags=["disclosures"])
@require("disclosures:read")
@bp.response(200, DisclosureListOut, description="The list")
@bp.alt_response(
    200, schema={"type": "string"}, content_type="text/csv", description="The list", success=True
)
@bp.arguments(schemas.DisclosureExportIn, location="query")
def export_disclosures(args):
    """The FTC disclosure list, by brand or campaign, as JSON or CSV (streamed).

    Scope disclosures:read. Entries whose award was received, leaving out anything withdrawn,
    contested, restricted or erased.
    """
    brand, campaign = args.get("brand"), args.get("campaign")
    rows = disclosure_list.entries(brand=brand, campaign=campaign)
    audit.record(actor(), "disclosures.exported", details={"brand": brand, "campaign": campaign})
    if args["format"] == "csv":
        return _streamed(disclosure_list.stream_csv(rows), "text/csv")
    body = disclosure_list.stream_json(rows, brand=brand, campaign=campaign)
    return _streamed(body, "application/json")
