"""Evidence attached to a request (pictures a subject sends with a rectification, …): checked
by decoding, re-encoded without metadata, stored under the subject's key with a generated name,
shown only to the subject and to officers, each viewing audited.

A picture is accepted only if Pillow decodes all of it as JPEG, PNG or WebP within the size and
pixel limits. What is stored is a fresh encoding of the decoded pixels: nothing the sender's
file carried besides the picture — EXIF, GPS position, comments, a ZIP or script appended to
make a polyglot — survives. A file that fails any check, or that Pillow fails on in any way, is
refused with a message saying why, and nothing of it is stored.

Checking is bounded in cost: pixel count and pixels per byte are checked from the header before
any pixel is decoded, large JPEGs are decoded reduced, and only DECODE_SLOTS pictures are
decoded at once in a process (a picture that finds none free is refused with "try again").

Pillow is imported by the functions that decode, not with this module: every
process imports this one (the lifecycle, the worker's jobs), few of them ever decode a picture,
and Pillow with its codecs is a few MiB and milliseconds in each (issue 17, start-up).

Before the request is filed, checked pictures may be held for at most an hour while the person
looks them over and takes out any they did not mean to send, sealed with a key only their
browser session holds (:func:`hold`; see "Pictures held before the request is sent" below).
"""

import io
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from rights.errors import Invalid, NotFound
from rights.ledger import audit
from storage import vault
from storage.db import db
from storage.models import EvidenceAttachment, RightsRequest, Subject
from storage.wording import N_


def for_request(request: RightsRequest) -> list[EvidenceAttachment]:
    return list(
        db.session.execute(
            select(EvidenceAttachment)
            .where(EvidenceAttachment.request_id == request.id)
            .order_by(EvidenceAttachment.id)
        ).scalars()
    )


def read(request: RightsRequest, attachment_id: int, *, actor: str) -> tuple[str, bytes]:
    """(media type, content) of one of this request's attachments; audited (flushes)."""
    item = db.session.get(EvidenceAttachment, attachment_id)
    if item is None or item.request_id != request.id:
        raise NotFound("No such attachment on this request.")
    try:
        content = vault.decrypt_bytes(
            item.subject_id, "evidence_attachments.content_enc", item.content_enc
        )
    except vault.KeyMissing:
        raise NotFound("This attachment was erased with the subject's data.") from None
    audit.record(
        actor,
        "evidence.viewed",
        subject_ref=db.session.get(Subject, item.subject_id).ref,
        target=f"evidence:{item.id}",
    )
    return item.media_type, content


FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_BYTES = 4 * 1024 * 1024
MAX_PIXELS = 12_000_000  # a 4000 x 3000 photo, what a phone's main camera takes by default
MAX_SIDE = 12_000  # a long screenshot: 1000 x 12000 is still within MAX_PIXELS
MAX_FILES = 3
# Pixels the header claims per byte of file, refused above this before any pixel is decoded.
# Measured (Pillow's encoders, 1280 x 2000 screenshots of a mostly white page): 3 lines of
# text on it take 108-142 pixels/byte as an RGB(A) PNG, 374 as a 256-colour PNG, 607 as a
# 16-colour one, 626 as lossless WebP; 12 lines 58-257; photos 4-40 (JPEG, lossy WebP). An RGB
# PNG cannot pass ~340 even when blank (deflate's best is ~1:1030 and a pixel is 3 bytes), an
# 8-bit one ~1030; what goes beyond is one colour, or under 8 bits a pixel: the outside test's
# 24 MP PNG of 2,991 bytes is 1-bit, 8,024 pixels/byte (12 MP in 1.5 KB: 7,812). 1,000 keeps
# a margin of 1.6 over the sparsest real page measured and refuses all of those.
MAX_PIXELS_PER_BYTE = 1_000
# JPEGs are decoded reduced (libjpeg scales by 1/2, 1/4 or 1/8 while decoding, for a fraction
# of the memory and time) as far as the shorter side stays at least this: 2000 x 1500 of a
# 12 MP photo shows a label's or receipt's small print, and no screenshot is reduced (a 4K
# one's shorter side, 2160, would fall to 1080, blurring text). The stored picture is the
# reduced one.
DRAFT_MIN_SIDE = 1_200
# Pictures decoded at once in this process (each holds up to ~2 copies of its pixels: ~100 MB
# for 12 MP RGBA); a picture that finds no slot free within SLOT_WAIT_SECONDS is refused with
# "try again" rather than queued without bound. gunicorn's sync workers run one request at a
# time anyway; this bounds threaded servers (gthread, the development server).
DECODE_SLOTS = 2
SLOT_WAIT_SECONDS = 5.0
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)
BUSY = N_("We are busy checking other pictures; try again in a minute")


class Busy(Invalid):
    """No decoding slot came free in time: nothing is wrong with the file itself."""


@dataclass(frozen=True)
class Picture:
    media_type: str
    content: bytes


def check_picture(name: str, data: bytes) -> Picture:
    """Decode, check and re-encode one uploaded picture; raises Invalid naming the file and
    what is wrong with it (Busy when too many pictures are being checked at once). The
    ``fields`` messages are the ones a person reads (on the form), in their language."""
    label = (name or "The file")[:80]
    said = label if name else _("The file")
    if not data:
        raise Invalid(f"{label} is empty.", {"pictures": [_("%(name)s is empty", name=said)]})
    if len(data) > MAX_BYTES:
        raise Invalid(
            f"{label} is larger than 4 MB.",
            {"pictures": [_("%(name)s is larger than 4 MB", name=said)]},
        )
    bad = Invalid(
        f"{label} is not a JPEG, PNG or WebP picture we can read.",
        {"pictures": [_("%(name)s is not a JPEG, PNG or WebP picture we can read", name=said)]},
    )
    try:
        fmt = _probe(label, said, data, bad)
        with _decoding_slot():
            return Picture(FORMATS[fmt], _reencode(data, fmt))
    except Invalid:
        raise
    # Deliberately broad: Pillow and its codecs raise far more than they document on a crafted
    # file (TypeError, AttributeError, struct.error from malformed EXIF in exif_transpose;
    # DecompressionBombError; MemoryError; a DecompressionBombWarning wherever warnings are
    # errors...). Whatever it is, the file is what failed: refused with the file's name, and
    # nothing of it is kept. (BaseException — KeyboardInterrupt, SystemExit — still goes up.)
    except Exception:  # noqa: BLE001
        raise bad from None


def _probe(label: str, said: str, data: bytes, bad: Invalid) -> str:
    """The format, from the header alone, once size, pixel count and pixels per byte are
    within bounds and the structure (PNG: every chunk's checksum) is sound. ``said``: the
    file's name as the person reads it."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as probe:
        fmt = probe.format
        width, height = probe.size
        if fmt not in FORMATS:
            raise bad
        if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
            megapixels = MAX_PIXELS // 1_000_000
            raise Invalid(
                f"{label} has too many pixels.",
                {
                    "pictures": [
                        _(
                            "%(name)s is over %(megapixels)d megapixels; send a smaller picture",
                            name=said,
                            megapixels=megapixels,
                        )
                    ]
                },
            )
        # Pillow's own limit, if set lower: Image.open raised above twice it and warned above
        # it, and the warning is refused here whether or not warnings are errors in this
        # process (no catch_warnings to make it one: that changes process-wide state, which is
        # not thread-safe).
        if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
            raise bad
        if width * height > MAX_PIXELS_PER_BYTE * len(data):
            raise Invalid(
                f"{label} has too many pixels for its file size.",
                {
                    "pictures": [
                        _(
                            "%(name)s has too many pixels for its file size; send the photo or "
                            "screenshot as it was taken",
                            name=said,
                        )
                    ]
                },
            )
        probe.verify()  # structure and checksums, without decoding
    return fmt


@contextmanager
def _decoding_slot():
    if not _decoding.acquire(timeout=SLOT_WAIT_SECONDS):
        raise Busy(f"{BUSY}.", {"pictures": [_(BUSY)]})
    try:
        yield
    finally:
        _decoding.release()


def _draft_scale(size: tuple[int, int]) -> int:
    """The largest JPEG decoding reduction that keeps the shorter side >= DRAFT_MIN_SIDE."""
    for scale in (8, 4, 2):
        if min(size) // scale >= DRAFT_MIN_SIDE:
            return scale
    return 1


def _reencode(data: bytes, fmt: str) -> bytes:
    """Every pixel decoded (a truncated file fails here), turned upright, and encoded afresh
    from the pixels alone: no info dict, so no EXIF, ICC or text chunks. At most two copies of
    the pixels are held at once."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        if fmt == "JPEG" and (scale := _draft_scale(image.size)) > 1:
            image.draft(None, (image.size[0] // scale, image.size[1] // scale))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # keep the orientation, drop the tags
        mode = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
        pixels = image if image.mode == mode else image.convert(mode)
        if pixels is not image:
            image.close()  # the decoded pixels, converted: no longer needed
        fresh = Image.new(mode, pixels.size)
        fresh.paste(pixels)
        pixels.close()
    out = io.BytesIO()
    if fmt == "JPEG":
        (fresh if fresh.mode == "RGB" else fresh.convert("RGB")).save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        fresh.save(out, "PNG", optimize=True)
    else:
        fresh.save(out, "WEBP", quality=90)
    return out.getvalue()


def check_pictures(files: list[tuple[str, bytes]]) -> list[Picture]:
    """Every file checked (all must pass, so a request is never filed with half its
    evidence); raises Invalid listing every file that did not."""
    if len(files) > MAX_FILES:
        raise Invalid(
            f"Send at most {MAX_FILES} pictures.",
            {
                "pictures": [
                    ngettext("at most %(num)d picture", "at most %(num)d pictures", MAX_FILES)
                ]
            },
        )
    pictures, problems = [], []
    for name, data in files:
        try:
            pictures.append(check_picture(name, data))
        except Busy as exc:
            # The next file would wait as long: say so once, with what was found so far.
            raise Invalid(exc.message, {"pictures": [*problems, _(BUSY)]}) from None
        except Invalid as exc:
            problems += exc.fields["pictures"]
    if problems:
        raise Invalid("Some pictures cannot be used.", {"pictures": problems})
    return pictures


def attach(request: RightsRequest, pictures: list[Picture]) -> list[EvidenceAttachment]:
    """Store checked pictures with the request, under the subject's key (flushes)."""
    rows = []
    for picture in pictures:
        row = EvidenceAttachment(
            request_id=request.id,
            subject_id=request.subject_id,
            media_type=picture.media_type,
            content_enc=vault.encrypt(
                request.subject_id, "evidence_attachments.content_enc", picture.content
            ),
        )
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return rows


EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def filename(item_id: int, media_type: str) -> str:
    """The generated name a picture is served under (never the sender's)."""
    return f"evidence-{item_id}.{EXTENSIONS.get(media_type, 'bin')}"


# --- Pictures held before the request is sent -------------------------------------------------
#
# A correction's pictures are checked (and re-encoded) when its form is first sent, then held
# while the person looks them over and takes out any they did not mean to send; only then is
# the request filed, with the pictures left. Nothing is filed meanwhile, so there is no subject
# key to seal them with: each holding has a key of its own, made for it and kept only in the
# person's browser session (the signed session cookie), never on the server. The held files are
# sealed with it (AES-GCM, the file's id as associated data): they can be read back through
# the browser that chose them and by no one else — not by us once that session is gone. A
# holding lasts HOLD_FOR at most: the time it was made travels in the signed session, a picture
# older than that is never read back, and its files are deleted by the next holding or sending
# (sweep_held), or when the person sends or takes it out.

HOLD_FOR = timedelta(hours=1)
THUMBNAIL_SIDE = 240  # the preview shown next to each held picture, at most this many pixels
HELD_ID = re.compile(r"[A-Za-z0-9_-]{32}")


@dataclass(frozen=True)
class Held:
    """One held picture, as the session keeps it: no content, only where and what it is."""

    id: str
    name: str  # the file's name as the person chose it (shown to them alone), at most 80 chars
    media_type: str
    size: int
    held_at: float  # seconds since the epoch

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> "Held | None":
        """A held picture from the session, or None for anything that is not one."""
        try:
            held = cls(**data)
        except TypeError:
            return None
        if not isinstance(held.id, str) or not HELD_ID.fullmatch(held.id):
            return None
        return held

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) - self.held_at > HOLD_FOR.total_seconds()


def holding_key() -> bytes:
    """A fresh key for one browser's held pictures (kept in its session, nowhere else)."""
    return AESGCM.generate_key(bit_length=256)


def held_folder() -> Path:
    """Where held pictures wait, sealed: HELD_PICTURES_DIR, or instance/held-pictures."""
    configured = current_app.config.get("HELD_PICTURES_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "held-pictures"


def hold(key: bytes, name: str, picture: Picture) -> Held:
    """Hold a checked picture, sealed with ``key``, with a small preview of it."""
    folder = held_folder()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    sweep_held()
    held = Held(
        id=secrets.token_urlsafe(24),
        name=(name or "picture")[:80],
        media_type=picture.media_type,
        size=len(picture.content),
        held_at=time.time(),
    )
    _write(folder / f"{held.id}.pic", _seal(key, held.id, "picture", picture.content))
    preview = _thumbnail(picture)
    if preview is not None:
        _write(folder / f"{held.id}.thumb", _seal(key, held.id, "preview", preview))
    return held


def held_picture(key: bytes, held: Held) -> Picture | None:
    """The held picture back, or None when it expired, is gone or does not open with
    ``key`` (never a picture that was not checked: only ``hold`` writes these files)."""
    content = _read(key, held, "picture", "pic")
    return None if content is None else Picture(held.media_type, content)


def held_preview(key: bytes, held: Held) -> bytes | None:
    """The held picture's preview (a PNG at most THUMBNAIL_SIDE a side), or None."""
    return _read(key, held, "preview", "thumb")


def let_go(held: list[Held]) -> None:
    """Delete held pictures (sent with the request, or taken out)."""
    folder = held_folder()
    for item in held:
        for suffix in ("pic", "thumb"):
            (folder / f"{item.id}.{suffix}").unlink(missing_ok=True)


def sweep_held(now: float | None = None) -> int:
    """Delete every held file older than HOLD_FOR (whoever held it). Returns how many."""
    folder = held_folder()
    if not folder.is_dir():
        return 0
    oldest = (now or time.time()) - HOLD_FOR.total_seconds()
    gone = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_file() and entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)
                    gone += 1
            except FileNotFoundError:
                pass  # another worker swept it first
    return gone


def _seal(key: bytes, held_id: str, what: str, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, f"held:{held_id}:{what}".encode())


def _read(key: bytes, held: Held, what: str, suffix: str) -> bytes | None:
    if held.expired():
        return None
    try:
        blob = (held_folder() / f"{held.id}.{suffix}").read_bytes()
        return AESGCM(key).decrypt(blob[:12], blob[12:], f"held:{held.id}:{what}".encode())
    except (OSError, InvalidTag, ValueError):
        return None


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _thumbnail(picture: Picture) -> bytes | None:
    """A small PNG of a checked picture (decoded reduced where JPEG allows), or None when no
    decoding slot comes free: the list then shows the picture's name without a preview."""
    from PIL import Image

    try:
        with _decoding_slot(), Image.open(io.BytesIO(picture.content)) as image:
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            image.save(out, "PNG", optimize=True)
            return out.getvalue()
    except Busy:
        return None
