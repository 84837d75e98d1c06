"""What a completed request gives the subject to download, from the browser its link was
confirmed in: the access report (a page or JSON), the portability export (JSON or a zip of
CSV files), and an erasure's receipt file. Every download is audited; large bodies stream,
after web.transaction has committed the audit entry."""

from flask import (
    Response,
    abort,
    render_template,
    send_file,
    stream_template,
)

from rights.access import access, portability
from rights.erasure import erasure, statements
from rights.lifecycle import requests
from web.public import bp, no_store, own_request
from web.public.forms import RecordKeyForm
from web.streaming import streamed


def _downloadable(reference: str, kind: str):
    req = own_request(reference)
    if req is None or req.type != kind or not requests.downloads_available(req):
        abort(404)
    return req


def _download(reference: str, kind: str, what: str):
    req = _downloadable(reference, kind)
    requests.record_download(req, what, actor="subject")
    return req


@bp.get("/requests/<reference>/report")
def report_html(reference: str):
    req = _download(reference, "access", "report (html)")
    return no_store(Response(streamed(_stream_report(req))))


def _stream_report(req):
    meta = access.report_meta(req)
    yield from stream_template(
        "public/report.html", req=req, meta=meta, sections=access.iter_sections(req, meta)
    )


@bp.get("/requests/<reference>/report.json")
def report_json(reference: str):
    req = _download(reference, "access", "report (json)")
    return no_store(
        Response(streamed(access.stream_json(req)), mimetype="application/json"),
        f"{req.reference}-report.json",
    )


@bp.get("/requests/<reference>/export.json")
def export_json(reference: str):
    req = _download(reference, "portability", "export (json)")
    return no_store(
        Response(streamed(portability.stream_json(req)), mimetype="application/json"),
        f"{req.reference}-export.json",
    )


@bp.get("/requests/<reference>/export.zip")
def export_zip(reference: str):
    req = _downloadable(reference, "portability")
    # Built before the download is recorded: the audit entry's write opens the transaction
    # (on SQLite, the write lock), which then lasts only until the answer is ready.
    body = portability.build_zip(req)
    requests.record_download(req, "export (zip)", actor="subject")
    return no_store(
        send_file(
            body,
            mimetype="application/zip",
            as_attachment=True,
            download_name=f"{req.reference}.zip",
        )
    )


@bp.post("/requests/<reference>/receipt")
def receipt_download(reference: str):
    """The receipt file (receipt + record key), right after the key is shown: the browser
    posts the key back, so it never sits on the server in clear or in a URL."""
    req = own_request(reference)
    form = RecordKeyForm()
    if req is None or not form.validate_on_submit():
        abort(404)
    receipt = erasure.receipt_by_record_key(form.record_key.data)
    if receipt is None or receipt.request_id != req.id:
        abort(404)
    requests.record_download(req, "receipt", actor="subject")
    return receipt_file(receipt, form.record_key.data)


def receipt_file(receipt, record_key: str) -> Response:
    """The receipt file: a page to keep, read and print (one HTML file, nothing fetched from
    anywhere) — the receipt in words, the record key that opens statements, where anyone can
    check it, and the signed receipt itself, which the verification page finds in the file."""
    body = render_template(
        "public/receipt_file.html", **statements.receipt_file(receipt, record_key)
    )
    return no_store(Response(body, mimetype="text/html"), f"deletion-receipt-{receipt.id[:8]}.html")
