"""Pictures sent with a rectification: checked by decoding, re-encoded without metadata,
stored encrypted under generated names, shown to the subject and officers only; a bad file
is refused with a message and nothing of it (nor of the request) is stored."""

import io
import re
import struct
import zlib

from PIL import Image
from sqlalchemy import func, select

from rights import evidence
from storage.db import db
from storage.models import EvidenceAttachment, RightsRequest
from tests import factories

FORM = {
    "type": "rectification",
    "email": "person1@example.org",
    "records": "aw-1",
    "correction": "I never received the phone.",
}


def _jpeg(size=(64, 48), exif=True) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "SnoopCam"  # Make
        tags[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
        image.save(out, "JPEG", exif=tags.tobytes())
    else:
        image.save(out, "JPEG")
    return out.getvalue()


def _png(size=(32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 90, 200, 255)).save(out, "PNG")
    return out.getvalue()


def _pixel_flood() -> bytes:
    """A tiny PNG whose header claims 100000 x 100000 pixels."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _post(client, files, **extra):
    data = {**FORM, **extra, "pictures": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/requests/new", data=data, content_type="multipart/form-data")


def _stored(app):
    with app.app_context():
        return (
            db.session.execute(select(func.count(EvidenceAttachment.id))).scalar_one(),
            db.session.execute(select(func.count(RightsRequest.id))).scalar_one(),
        )


def _content(app, item: EvidenceAttachment) -> bytes:
    from storage import vault

    return vault.decrypt_bytes(
        item.subject_id, "evidence_attachments.content_enc", item.content_enc
    )


def test_good_pictures_are_stored_reencoded_without_metadata(app, client):
    original = _jpeg()
    assert b"SnoopCam" in original
    resp = _post(client, [("phone.jpg", original), ("box.png", _png())])
    assert resp.status_code == 303, resp.get_data(as_text=True)
    with app.app_context():
        items = db.session.execute(select(EvidenceAttachment)).scalars().all()
        assert [i.media_type for i in items] == ["image/jpeg", "image/png"]
        stored = _content(app, items[0])
        assert stored != original and b"SnoopCam" not in stored
        with Image.open(io.BytesIO(stored)) as image:
            assert image.size == (64, 48) and not image.getexif()
            assert "exif" not in image.info
        assert b"SnoopCam" not in items[0].content_enc  # and encrypted at rest


def test_each_bad_file_is_refused_with_a_reason_and_nothing_is_stored(app, client):
    cases = {
        "truncated.jpg": _jpeg()[:300],
        "huge.jpg": b"\xff\xd8" + b"\x00" * (evidence.MAX_BYTES + 10),
        "flood.png": _pixel_flood(),
        "anim.gif": _gif(),
        "notes.txt": b"just some text, not a picture",
        "empty.png": b"",
    }
    for name, content in cases.items():
        resp = _post(client, [(name, content)])
        page = resp.get_data(as_text=True)
        assert resp.status_code == 422, name
        assert name in page, name  # says which file
        # What was typed is kept; only the file must be chosen again.
        assert "I never received the phone." in page and "person1@example.org" in page
        assert "choose the pictures again" in page
    assert _stored(app) == (0, 0)


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


def test_one_bad_file_among_good_ones_stores_none_of_them(app, client):
    resp = _post(client, [("ok.png", _png()), ("bad.jpg", b"GIF89a not really")])
    assert resp.status_code == 422
    assert _stored(app) == (0, 0)


def test_a_polyglot_keeps_only_the_picture(app, client):
    payload = b"PK\x03\x04<script>alert(1)</script>"
    resp = _post(client, [("poly.jpg", _jpeg(exif=False) + payload)])
    assert resp.status_code == 303
    with app.app_context():
        item = db.session.execute(select(EvidenceAttachment)).scalar_one()
        stored = _content(app, item)
        assert b"<script>" not in stored and b"PK\x03\x04" not in stored
        with Image.open(io.BytesIO(stored)) as image:
            image.load()


def test_too_many_pictures(app, client):
    resp = _post(client, [(f"p{n}.png", _png()) for n in range(evidence.MAX_FILES + 1)])
    assert resp.status_code == 422 and "at most 3 pictures" in resp.get_data(as_text=True)


def test_pictures_only_with_a_correction(app, client):
    resp = _post(client, [("p.png", _png())], type="access", records="", correction="")
    assert resp.status_code == 422
    assert "Not used for the right you chose" in resp.get_data(as_text=True)
    assert _stored(app) == (0, 0)
    # An empty file input (the browser's "no file chosen") is not a picture.
    resp = client.post(
        "/requests/new",
        data={"type": "access", "email": "x@example.org", "pictures": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 303


def test_the_subject_and_officers_see_the_pictures_nobody_else(app, client, login_as, mailbox):
    with app.app_context():
        factories.member(1)
        db.session.commit()
    assert _post(client, [("phone.jpg", _jpeg())]).status_code == 303
    from tests.helpers import deliver

    deliver(app)
    link = re.search(r"http://lethe.test(/verify/\S+)", mailbox.body(mailbox.messages[-1])).group(1)
    assert client.post(link, data={}).status_code == 303
    with app.app_context():
        req = db.session.execute(select(RightsRequest)).scalar_one()
        item = db.session.execute(select(EvidenceAttachment)).scalar_one()
        ref, rid, att = req.reference, req.id, item.id
    page = client.get(f"/requests/{ref}").get_data(as_text=True)
    assert "Pictures you sent" in page
    mine = client.get(f"/requests/{ref}/evidence/{att}")
    assert mine.status_code == 200 and mine.mimetype == "image/jpeg"
    assert f'filename="evidence-{att}.jpg"' in mine.headers["Content-Disposition"]
    assert app.test_client().get(f"/requests/{ref}/evidence/{att}").status_code == 404
    officer = login_as("officer")
    resp = officer.get(f"/dashboard/requests/{rid}/evidence/{att}")
    assert resp.status_code == 200 and resp.data == mine.data
