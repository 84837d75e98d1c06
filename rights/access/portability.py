"""Right to data portability (Art. 20): the data the subject provided, machine-readable.

Only fields the data map marks ``provided_by_subject`` are exported (what the subject typed or
did), never what the platform inferred about them (scores, topics) or generated (disclosure
lists). Two formats: one JSON document, or a zip holding one CSV per category (pictures as
files beside them). Both are streamed or spooled: bounded memory whatever the size.
"""

import csv
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator

from flask_babel import gettext as _

from rights.access.access import iter_records
from storage import vault
from storage.clock import utcnow
from storage.datamap import CATEGORIES, Category
from storage.models import RightsRequest

SPOOL_BYTES = 8 * 1024 * 1024


def portable_categories() -> list[Category]:
    return [c for c in CATEGORIES if c.portable_fields]


def stream_json(request: RightsRequest) -> Iterator[str]:
    vault.load_keys([request.subject_id])
    yield (
        json.dumps(
            {
                "export": "portability",
                "format_version": 1,
                "generated_at": utcnow().isoformat(),
                "request": request.reference,
            }
        )[:-1]
        + ', "categories": {'
    )
    for i, cat in enumerate(portable_categories()):
        yield ("," if i else "") + json.dumps(cat.key) + ": ["
        records = iter_records(
            cat, request.subject_id, fields=cat.portable_fields, with_provenance=False
        )
        for j, record in enumerate(records):
            yield ("," if j else "") + json.dumps(record)
        yield "]"
    yield "}}"


def build_zip(request: RightsRequest) -> tempfile.SpooledTemporaryFile:
    """A zip of CSVs (and picture files), spooled to disk past ``SPOOL_BYTES``. Rewound."""
    vault.load_keys([request.subject_id])
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # The README is prose for the person, in their language; the file and column names
        # (the data map's field names) stay as they are, for programs reading the export.
        zf.writestr(
            "README.txt",
            _(
                "Your data, as you provided it to the platform (GDPR Art. 20).\n"
                "Request %(reference)s, generated %(generated)s.\n"
                "One CSV file per category; pictures are in the pictures/ folder.\n",
                reference=request.reference,
                generated=utcnow().isoformat(),
            ),
        )
        for cat in portable_categories():
            binary = [f for f in cat.portable_fields if f.kind == "binary"]
            columns = [f.name for f in cat.portable_fields if f.kind != "binary"]
            if binary:
                columns.append("file")
            # Pictures go into the zip as they come; the CSV is spooled beside it and added
            # after (zipfile allows one open write handle at a time).
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as buf:
                text = io.TextIOWrapper(buf, encoding="utf-8", newline="")
                writer = csv.writer(text)
                writer.writerow(columns)
                records = iter_records(
                    cat,
                    request.subject_id,
                    fields=cat.portable_fields,
                    with_provenance=False,
                    binary="raw",
                )
                for n, record in enumerate(records, 1):
                    row = [_cell(record[c]) for c in columns if c != "file"]
                    for f in binary:
                        data = record.get(f.name)
                        if data is not None:
                            name = f"pictures/{cat.key}-{n}{_extension(record)}"
                            zf.writestr(name, data)
                            row.append(name)
                    writer.writerow(row)
                text.flush()
                buf.seek(0)
                with zf.open(f"{cat.key}.csv", "w") as target:
                    shutil.copyfileobj(buf, target)
                text.detach()
    out.seek(0)
    return out


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _extension(record: dict) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}.get(
        record.get("media_type"), ".bin"
    )
