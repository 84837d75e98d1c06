"""Evidence attached to a request (pictures a subject sends with a rectification, …): checked
by decoding, re-encoded without metadata, stored under the subject's key with a generated name,
shown only to the subject and to officers, each viewing audited.

A picture is accepted only if Pillow decodes all of it as JPEG, PNG or WebP within the size and
pixel limits. What is stored is a fresh encoding of the decoded pixels: nothing the sender's
file carried besides the picture — EXIF, GPS position, comments, a ZIP or script appended to
make a polyglot — survives. A file that fails any check is refused with a message saying why,
and nothing of it is stored.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from rights import audit
from rights.errors import Invalid, NotFound
from storage import vault
from storage.db import db
from storage.models import EvidenceAttachment, RightsRequest, Subject


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
MAX_PIXELS = 24_000_000  # a 6000 x 4000 photo
MAX_SIDE = 12_000
MAX_FILES = 3


@dataclass(frozen=True)
class Picture:
    media_type: str
    content: bytes


def check_picture(name: str, data: bytes) -> Picture:
    """Decode, check and re-encode one uploaded picture; raises Invalid naming the file and
    what is wrong with it."""
    label = (name or "The file")[:80]
    if not data:
        raise Invalid(f"{label} is empty.", {"pictures": [f"{label} is empty"]})
    if len(data) > MAX_BYTES:
        raise Invalid(
            f"{label} is larger than 4 MB.", {"pictures": [f"{label} is larger than 4 MB"]}
        )
    bad = Invalid(
        f"{label} is not a JPEG, PNG or WebP picture we can read.",
        {"pictures": [f"{label} is not a JPEG, PNG or WebP picture we can read"]},
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                if fmt not in FORMATS:
                    raise bad
                if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                    raise Invalid(
                        f"{label} has too many pixels.",
                        {"pictures": [f"{label} is over 24 megapixels; send a smaller picture"]},
                    )
                probe.verify()  # structure and checksums, without decoding
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # every pixel: a truncated file fails here
                clean = ImageOps.exif_transpose(image)  # keep the orientation, drop the tags
                pixels = clean.convert("RGBA" if clean.mode in ("RGBA", "LA", "P") else "RGB")
    except Invalid:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ):
        raise bad from None
    out = io.BytesIO()
    # A new image from the pixels alone: no info dict, no EXIF, ICC or text chunks.
    fresh = Image.new(pixels.mode, pixels.size)
    fresh.paste(pixels)
    if fmt == "JPEG":
        fresh.convert("RGB").save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        fresh.save(out, "PNG", optimize=True)
    else:
        fresh.save(out, "WEBP", quality=90)
    return Picture(FORMATS[fmt], out.getvalue())


def check_pictures(files: list[tuple[str, bytes]]) -> list[Picture]:
    """Every file checked (all must pass, so a request is never filed with half its
    evidence); raises Invalid listing every file that did not."""
    if len(files) > MAX_FILES:
        raise Invalid(
            f"Send at most {MAX_FILES} pictures.", {"pictures": [f"at most {MAX_FILES} pictures"]}
        )
    pictures, problems = [], []
    for name, data in files:
        try:
            pictures.append(check_picture(name, data))
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
