"""Pictures sent with a rectification: checked by decoding, re-encoded without metadata,
stored encrypted under generated names, shown to the subject and officers only; a bad file
is refused with a message and nothing of it (nor of the request) is stored."""

import io
import random
import re
import struct
import threading
import time
import warnings
import zlib

import pytest
from PIL import Image, ImageDraw, ImageFile, ImageOps
from sqlalchemy import func, select

from rights.errors import Invalid
from rights.lifecycle import evidence
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


# --- Malformed files: whatever Pillow raises while decoding or re-encoding is a refusal. ---

ORIENTATION_6 = (0x0112, 3, 1, struct.pack("<HH", 6, 0))  # SHORT, one value: turn 90 degrees
AFTER_IFD = struct.pack("<I", 8 + 2 + 2 * 12 + 4)  # offset of the RATIONAL after a 2-entry IFD


def _exif_jpeg(*entries, size=(64, 48)) -> bytes:
    """A JPEG whose EXIF block is written byte by byte: each entry is (tag, type, count, value
    or offset), so a tag can carry a type or count no camera writes."""
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in sorted(entries):
        ifd += struct.pack("<HHI", tag, kind, count) + value
    ifd += struct.pack("<I", 0)  # no next IFD
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<II", 1, 1)  # 1/1, at AFTER_IFD
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return out.getvalue()


@pytest.mark.parametrize(
    "entry, raised",
    [
        ((0x011A, 1, 1, b"\x00" * 4), TypeError),  # XResolution as a BYTE, not a RATIONAL
        ((0x010F, 5, 1, AFTER_IFD), AttributeError),  # Make as a RATIONAL, not text
        ((0x0128, 1, 1, b"\x00" * 4), struct.error),  # ResolutionUnit as a BYTE, not a SHORT
    ],
    ids=["xresolution-byte", "make-rational", "resolutionunit-byte"],
)
def test_a_photo_with_malformed_exif_is_refused_not_a_server_error(app, client, entry, raised):
    data = _exif_jpeg(ORIENTATION_6, entry)
    with Image.open(io.BytesIO(data)) as image, pytest.raises(raised):
        ImageOps.exif_transpose(image)  # what Pillow does with it: the outside test's 500
    with pytest.raises(Invalid) as refused:
        evidence.check_picture("rotated.jpg", data)
    assert refused.value.fields == {
        "pictures": ["rotated.jpg is not a JPEG, PNG or WebP picture we can read"]
    }
    resp = _post(client, [("rotated.jpg", data)])
    assert resp.status_code == 422 and "rotated.jpg is not a JPEG" in resp.get_data(as_text=True)
    assert _stored(app) == (0, 0)


@pytest.mark.parametrize("limit", [2_000, 1_000], ids=["bomb-warning", "bomb-error"])
def test_pillows_decompression_bomb_warning_and_error_are_refusals(app, client, monkeypatch, limit):
    # 64 x 48 = 3,072 pixels: over Pillow's limit warns, over twice the limit raises.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    resp = _post(client, [("phone.jpg", _jpeg())])
    assert resp.status_code == 422 and "phone.jpg is not a JPEG" in resp.get_data(as_text=True)
    assert _stored(app) == (0, 0)


def test_pillows_pixel_limit_holds_where_its_warning_does_not_raise(app, client, monkeypatch):
    # Production shows warnings (or ignores them) instead of raising them as this suite does.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        resp = _post(client, [("phone.jpg", _jpeg())])
    assert resp.status_code == 422 and "phone.jpg is not a JPEG" in resp.get_data(as_text=True)
    assert _stored(app) == (0, 0)


def test_any_failure_while_re_encoding_is_a_refusal(app, client, monkeypatch):
    picture = _png()

    def broken(self, *args, **kwargs):
        raise RuntimeError("the encoder gave up")

    monkeypatch.setattr(Image.Image, "save", broken)
    resp = _post(client, [("box.png", picture)])
    assert resp.status_code == 422 and "box.png is not a JPEG" in resp.get_data(as_text=True)
    assert _stored(app) == (0, 0)


# --- Cost: pixel cap, pixels per byte, reduced decoding, a bounded number at once. ---


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _screenshot(size=(1280, 2000)) -> Image.Image:
    """A mostly white page: a header bar, a box with three lines of text, a button."""
    rnd = random.Random(5)
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0], 72), fill=(24, 90, 170))
    draw.text((32, 28), "Perks - My orders", fill=(255, 255, 255))
    draw.rectangle((40, 120, size[0] - 40, 300), outline=(210, 210, 210), fill=(248, 248, 250))
    for line in range(3):
        words = " ".join(
            "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
            for _ in range(rnd.randint(4, 12))
        )
        draw.text((60, 140 + 20 * line), words, fill=(40, 40, 40))
    draw.rounded_rectangle((60, 320, 260, 360), 8, fill=(24, 90, 170))
    draw.text((90, 332), "Contact support", fill=(255, 255, 255))
    return image


def _noisy_photo(size=(1600, 1200)) -> bytes:
    noise = Image.frombytes("RGB", size, random.Random(2).randbytes(size[0] * size[1] * 3))
    return _encode(noise, "JPEG", quality=85)


@pytest.fixture
def loads(monkeypatch) -> list:
    """Every decode of pixels (Pillow's ImageFile.load), to show a refusal came before any."""
    calls, original = [], ImageFile.ImageFile.load

    def counted(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    return calls


def test_pictures_over_12_megapixels_are_refused_before_decoding(app, client, loads):
    big = _encode(Image.new("L", (4001, 3000), 255), "PNG")  # 12,003,000 pixels
    resp = _post(client, [("big.png", big)])
    assert resp.status_code == 422
    assert "big.png is over 12 megapixels" in resp.get_data(as_text=True)
    assert loads == [] and _stored(app) == (0, 0)


def test_a_picture_with_far_more_pixels_than_bytes_is_refused_before_decoding(app, client, loads):
    bomb = _encode(Image.new("1", (4000, 3000)), "PNG", optimize=True)  # 12 MP in 1.5 KB
    assert len(bomb) < 2_000
    resp = _post(client, [("bomb.png", bomb)])
    assert resp.status_code == 422
    assert "bomb.png has too many pixels for its file size" in resp.get_data(as_text=True)
    assert loads == [] and _stored(app) == (0, 0)


@pytest.mark.parametrize(
    "name, make",
    [
        ("page.png", lambda: _encode(_screenshot(), "PNG", optimize=True)),
        ("page-16-colours.png", lambda: _encode(_screenshot().quantize(16), "PNG", optimize=True)),
        ("page.webp", lambda: _encode(_screenshot(), "WEBP", lossless=True)),
        ("noisy.jpg", _noisy_photo),
    ],
)
def test_real_screenshots_and_photos_are_within_the_pixels_per_byte_bound(name, make):
    data = make()
    picture = evidence.check_picture(name, data)
    with Image.open(io.BytesIO(picture.content)) as image, Image.open(io.BytesIO(data)) as sent:
        assert image.size == sent.size  # accepted, and not reduced


def test_a_large_jpeg_is_decoded_reduced_and_still_turned_upright(app, client):
    tags = Image.Exif()
    tags[0x0112] = 6  # Orientation: turn 90 degrees clockwise
    photo = _encode(Image.new("RGB", (3200, 2400), (90, 120, 30)), "JPEG", exif=tags.tobytes())
    resp = _post(client, [("wide.jpg", photo)])
    assert resp.status_code == 303, resp.get_data(as_text=True)
    with app.app_context():
        item = db.session.execute(select(EvidenceAttachment)).scalar_one()
        with Image.open(io.BytesIO(_content(app, item))) as image:
            assert image.size == (1200, 1600) and not image.getexif()


@pytest.fixture
def held_slots():
    """Every decoding slot taken, as by other requests' pictures; given back afterwards."""
    taken = 0
    try:
        while evidence._decoding.acquire(blocking=False):
            taken += 1
        yield taken
    finally:
        for _ in range(taken):
            evidence._decoding.release()


def test_a_burst_waits_for_a_slot_then_is_told_to_try_again(app, client, monkeypatch, held_slots):
    assert held_slots == evidence.DECODE_SLOTS
    monkeypatch.setattr(evidence, "SLOT_WAIT_SECONDS", 0.05)
    started = time.monotonic()
    resp = _post(client, [("a.png", _png()), ("b.png", _png()), ("c.png", _png())])
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "We are busy checking other pictures; try again in a minute" in page
    assert "I never received the phone." in page  # what was typed is kept
    assert time.monotonic() - started < 2  # one wait, not one per picture
    assert _stored(app) == (0, 0)


def test_at_most_decode_slots_pictures_are_decoded_at_once(monkeypatch):
    busy, most, lock = 0, 0, threading.Lock()
    transpose = ImageOps.exif_transpose

    def slow(image, **kwargs):
        nonlocal busy, most
        with lock:
            busy += 1
            most = max(most, busy)
        time.sleep(0.2)
        with lock:
            busy -= 1
        return transpose(image, **kwargs)

    monkeypatch.setattr(ImageOps, "exif_transpose", slow)
    picture, errors = _png(), []

    def check():
        try:
            evidence.check_picture("box.png", picture)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most == evidence.DECODE_SLOTS
    # Every slot was given back, after refusals too.
    with pytest.raises(Invalid):
        evidence.check_picture("bad.jpg", _exif_jpeg(ORIENTATION_6, (0x011A, 1, 1, b"\x00" * 4)))
    slots = evidence.DECODE_SLOTS
    taken = [evidence._decoding.acquire(blocking=False) for _ in range(slots + 1)]
    for _ in range(sum(taken)):
        evidence._decoding.release()
    assert taken == [True] * slots + [False]


def test_pictures_are_shown_as_thumbnails_under_the_same_checks(app, client, login_as, mailbox):
    """Each picture is shown in the page (an <img> of the same authorised address, served
    inline) beside its download link; nobody else gets it, and officers' views are audited
    just as their downloads are."""
    from storage.models import AuditEvent
    from tests.helpers import deliver

    with app.app_context():
        factories.member(1)
        db.session.commit()
    assert _post(client, [("phone.jpg", _jpeg())]).status_code == 303
    deliver(app)
    link = re.search(r"http://lethe.test(/verify/\S+)", mailbox.body(mailbox.messages[-1])).group(1)
    assert client.post(link, data={}).status_code == 303
    with app.app_context():
        req = db.session.execute(select(RightsRequest)).scalar_one()
        ref, rid, att = (
            req.reference,
            req.id,
            db.session.execute(select(EvidenceAttachment.id)).scalar_one(),
        )

    shown = f"/requests/{ref}/evidence/{att}?inline=1"
    page = client.get(f"/requests/{ref}").get_data(as_text=True)
    assert f'<img class="thumb" src="{shown}" alt="Picture 1 you sent">' in page
    assert f'href="/requests/{ref}/evidence/{att}">Picture 1 (image/jpeg)</a>' in page  # kept
    mine = client.get(shown)
    assert mine.status_code == 200 and mine.mimetype == "image/jpeg"
    assert mine.headers["Content-Disposition"] == f'inline; filename="evidence-{att}.jpg"'
    assert mine.headers["Cache-Control"] == "no-store"
    assert mine.data == client.get(f"/requests/{ref}/evidence/{att}").data
    assert app.test_client().get(shown).status_code == 404  # not this browser's request

    officer = login_as("officer")
    shown = f"/dashboard/requests/{rid}/evidence/{att}?inline=1"
    page = officer.get(f"/dashboard/requests/{rid}").get_data(as_text=True)
    assert f'<img class="thumb" src="{shown}" alt="Attachment 1 the subject sent">' in page
    with app.app_context():
        before = db.session.execute(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "evidence.viewed")
        ).scalar_one()
    resp = officer.get(shown)
    assert resp.status_code == 200 and resp.data == mine.data
    assert resp.headers["Content-Disposition"].startswith("inline;")
    assert resp.headers["Cache-Control"] == "no-store"
    signed_out = app.test_client().get(shown)
    assert signed_out.status_code == 302 and "/dashboard/login" in signed_out.headers["Location"]
    with app.app_context():
        viewed = (
            db.session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "evidence.viewed")
                .order_by(AuditEvent.id.desc())
            )
            .scalars()
            .all()
        )
        assert len(viewed) == before + 1
        assert (
            viewed[0].actor == f"officer:{officer.officer_id}"
            and viewed[0].target == f"evidence:{att}"
        )
