"""Holdings statements for former members: what is still held, signed, on demand.

The record key from the deletion receipt is the only credential (stored as a hash). A
statement lists every record still held about the person's perks and disclosures (and the
other categories erasure retains), each with its Art. 17(3) exception and ``retain_until``,
read now — so after the retention sweep removes them it says, signed, that nothing is held.

Both documents read in words too (:func:`receipt_in_words`, :func:`held_in_words`): what was
erased, what is kept, why and until when, who was told — records named as
:mod:`rights.holdings.names` names them, codes read through :mod:`storage.processes`. The words
come from the signed claims alone (with, on the person's own pages, the records still held), so
the public verification page says of a genuine document what its owner was shown, and nothing
more: it looks nobody up.

The documents are signed in English, whatever the language of the page that asks for them; the
words here are written in the language being written (the reader's), from the English as signed.
"""

import uuid
from datetime import UTC, datetime

from flask import current_app
from flask_babel import gettext as _

from rights.access import access
from rights.erasure import erasure
from rights.holdings.names import Names, facts
from rights.ledger import audit, signing, transparency
from rights.lifecycle.outcomes import why_kept
from rights.recipients import told, webhooks
from storage import epochs, wording
from storage.clock import utcnow
from storage.datamap import BY_KEY, CATEGORIES
from storage.db import db
from storage.models import ErasureRun, Receipt, Subject
from storage.processes import (
    cap,
    count_words,
    date_words,
    moment_words,
    status_words,
    step_words,
)
from storage.wording import N_

PLAIN_KINDS = ("text", "datetime", "json", "perk", "award")


def held_records(subject_id: str) -> list[dict]:
    """Retained categories and their rows (plain columns only: the rest was shredded)."""
    out = []
    for cat in (c for c in CATEGORIES if c.erasure.action == "retain"):
        fields = [f for f in cat.fields if f.kind in PLAIN_KINDS]
        rows = []
        for batch in access.iter_rows(cat, subject_id):
            refs = access.lookups(fields, batch)
            for row in batch:
                record = {f.name: access.field_value(cat, f, row, refs) for f in fields}
                record["retain_until"] = access._iso(row.retain_until)
                record["restricted"] = row.restricted_at is not None
                rows.append(record)
        if rows:
            out.append(
                {
                    "category": cat.key,
                    "title": cat.title,
                    "labels": {f.name: f.label for f in fields},
                    "exception": cat.erasure.exception,
                    "records": rows,
                }
            )
    return out


def issue(receipt: Receipt) -> tuple[str, dict]:
    """A freshly signed statement for the person a receipt belongs to (flushes an audit
    entry; names no one)."""
    subject = db.session.execute(
        db.select(Subject).where(Subject.ref == receipt.subject_ref)
    ).scalar_one_or_none()
    with wording.in_language("en"):  # signed words are English; pages translate them
        # No subject row: the main database was restored from a backup older than the person;
        # then nothing about them is held.
        held = held_records(subject.id) if subject is not None else []
        statement_id = str(uuid.uuid4())
        now = utcnow()
        base = current_app.config["PUBLIC_URL"].rstrip("/")
        claims = {
            "iss": base,
            "sub": receipt.subject_ref,
            "jti": statement_id,
            "iat": int(now.timestamp()),
            "statement_id": statement_id,
            "receipt_id": receipt.id,
            "as_of": now.isoformat(),
            "holds_nothing": not held,
            "held": held,
            # When the person's key (and so every copy of their encrypted data) became unreadable
            # everywhere: the end of the shred epoch it was deleted in, once that epoch's key is
            # destroyed; until then, when it will be.
            **key_unrecoverable(receipt),
            # Who received the data, and whether each has confirmed acting on the erasure (Art. 19):
            # "recipients", each webhook delivery; "told", each recipient the data map names for
            # the categories the receipt lists with records, and how it was told, as of now.
            "recipients": webhooks.recipients_of(receipt.request_id),
            "told": told_of(receipt),
            "jwks_url": f"{base}/.well-known/jwks.json",
        }
    token = signing.sign(claims, signing.STATEMENT_TYP)
    transparency.queue(token, "statement")
    audit.record(
        "former-member",
        "statement.issued",
        subject_ref=receipt.subject_ref,
        target=f"receipt:{receipt.id}",
        details={"held": len(held)},
    )
    return token, claims


def told_of(receipt: Receipt) -> dict:
    """Who had to be told of the erasure and how each was, now: the recipients of the
    categories the signed receipt lists with records (it stands even where a restored backup
    lost the request's rows)."""
    erased = {
        c["category"]: c["records"] for c in signing.claims_of(receipt.jws).get("categories", [])
    }
    return told.for_categories(receipt.request_id, told.erased_categories(erased))


def key_unrecoverable(receipt: Receipt) -> dict:
    """``unrecoverable_after`` as the receipt promised it, and ``unrecoverable`` — whether
    every shred epoch alive when the key was deleted has had its key destroyed since (with
    when). Nothing is claimed for a key made before epochs (the receipt says so by a null)."""
    promised = signing.claims_of(receipt.jws).get("unrecoverable_after")
    since = None
    if promised:
        run = db.session.get(ErasureRun, receipt.request_id)
        deleted_by = run.finished_at if run is not None and run.finished_at else utcnow()
        since = epochs.unreadable_since(deleted_by)
    return {
        "unrecoverable_after": promised,
        "unrecoverable": since is not None,
        "unrecoverable_since": since.isoformat() if since else None,
    }


def for_record_key(record_key: str) -> tuple[str, dict] | None:
    """The signed statement a record key opens, or None — the same for unknown and
    malformed keys."""
    receipt = erasure.receipt_by_record_key(record_key)
    if receipt is None:
        return None
    return issue(receipt)


def receipt_file(receipt: Receipt, record_key: str) -> dict:
    """What a former member downloads and keeps, as a document they read: the receipt in
    words, their record key and where to use it, where anyone can check the receipt (no
    command line), then the signed receipt itself."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return {
        "receipt": receipt.jws,
        "words": for_owner(receipt),
        "record_key": erasure.format_record_key(record_key),
        "statement_url": f"{base}/records",
        "verify_url": f"{base}/verify-receipt",
        "jwks_url": f"{base}/.well-known/jwks.json",
    }


# --- In words ---------------------------------------------------------------------------------

# What being kept means for the records of a category, where it says more than "set apart and
# used for nothing else" (which a receipt says of them all).
KEPT_FOR = {"consents": N_("kept as proof that you gave consent; no longer used")}


def for_owner(receipt: Receipt) -> dict:
    """The receipt in words for the person it belongs to (their request page): as signed,
    each record still held named under its category."""
    return receipt_in_words(signing.claims_of(receipt.jws), held=_still_held(receipt.subject_ref))


def _still_held(subject_ref: str) -> list[dict]:
    subject = db.session.execute(
        db.select(Subject).where(Subject.ref == subject_ref)
    ).scalar_one_or_none()
    return held_records(subject.id) if subject is not None else []


def receipt_in_words(claims: dict, held: list[dict] | None = None) -> dict:
    """What a signed receipt says, in words: when (``erased_on``), ``erased`` ("2 influence
    scores", a line a category with records), ``kept`` (each kept category: ``what``, ``until``,
    ``why``, a ``note`` where being kept means more, and — given ``held``, the records still
    held as :func:`held_records` reads them — each ``records``' name and note), ``told`` (the
    signed claim, for the "who we told" table, with ``told_names``), and ``backups`` (when no
    copy anywhere can be read). Claims of older receipts, lacking a part, read without it."""
    named = {g["category"]: g["records"] for g in held_in_words(held or [])}
    erased, kept = [], []
    for entry in _dicts(claims.get("categories")):
        key, n = entry.get("category"), entry.get("records") or 0
        if not n:
            continue
        what = count_words(key, n, entry.get("title"))
        if entry.get("action") == "retained":
            kept.append(
                {
                    "category": key,
                    "what": cap(what),
                    "until": _date(entry.get("retain_until")),
                    "why": why_kept(entry.get("exception")),
                    "note": _(KEPT_FOR[key]) if key in KEPT_FOR else None,
                    "records": named.get(key, []),
                }
            )
        else:
            if entry.get("action") == "anonymised":
                erased.append(_("%(what)s (anonymised: nothing in it names you)", what=cap(what)))
            else:
                erased.append(cap(what))
    told_claim = told.in_words(claims.get("told") if isinstance(claims.get("told"), dict) else None)
    until = claims.get("unrecoverable_after")
    return {
        "reference": claims.get("request_reference"),
        "erased_on": _date(claims.get("erased_at")),
        "erased": erased,
        "kept": kept,
        "told": told_claim,
        "told_names": [r.get("name") for r in _dicts((told_claim or {}).get("recipients"))],
        "backups": (
            _(
                "Copies of your data in our backups and logs are encrypted with a key that is "
                "destroyed soon after %(moment)s: from then on no copy anywhere can be read by "
                "anyone, us included.",
                moment=_moment(until),
            )
            if until
            else None
        ),
    }


def statement_in_words(claims: dict) -> dict:
    """What a signed statement says, in words: ``as_of``, ``holds_nothing``, ``held``
    (:func:`held_in_words`) and ``told`` (the signed claim, for the "who we told" table)."""
    return {
        "as_of": _moment(claims.get("as_of")),
        "holds_nothing": claims.get("holds_nothing") is True,
        "held": held_in_words(claims.get("held") or []),
        "told": told.in_words(claims.get("told") if isinstance(claims.get("told"), dict) else None),
    }


def held_in_words(held: list[dict]) -> list[dict]:
    """A statement's records still held (its ``held`` claim), in words: each category's
    ``title`` and ``why``, and its ``records``, each with its ``name`` ("Your Nova X1 phone from
    Nova Mobile"), a ``note`` (a consent: "Kept as proof that you gave consent on 1 August 2026;
    no longer used."), its ``facts`` in words under their labels, and ``until``."""
    groups = [g for g in _dicts(held) if isinstance(g.get("records"), list)]
    names = Names()
    # Awards are named by their perk, as signed (the same statement carries both).
    for group in (g for g in groups if g.get("category") == "perk_awards"):
        for record in _dicts(group["records"]):
            perk = record.get("perk") if isinstance(record.get("perk"), dict) else {}
            if record.get("award_id") and perk.get("item"):
                names.perks[record["award_id"]] = (perk["item"], perk.get("brand") or None)
    return [
        {
            "category": g.get("category"),
            "title": g.get("title"),
            "why": why_kept(g.get("exception")),
            "records": [_record_in_words(g, r, names) for r in _dicts(g["records"])],
        }
        for g in groups
    ]


def _record_in_words(group: dict, record: dict, names: Names) -> dict:
    key, labels = group.get("category"), group.get("labels") or {}
    cat = BY_KEY.get(key)
    note = None
    if cat is None:  # a category this version no longer knows: its values, as signed
        title = group.get("title")  # as signed (English)
        name = _(title) if title else _("A record")
        said = [(_(labels.get(k, k)), str(v)) for k, v in record.items() if _shown(k, v)]
    else:
        row = _Row({f.column: record.get(f.name) for f in cat.fields})
        row.id = row.external_id
        if key == "request_messages":  # its request is not among its plain columns
            name = _("A step of one of your requests: %(step)s", step=step_words(row.kind))
        else:
            name = cap(names.name(key, row).what)
        said = [(_(f.label), str(record[f.name])) for f in cat.fields if _reference(f, record)]
        if key == "consents":
            note = _consent_note(record)
            record = {k: v for k, v in record.items() if k not in ("granted_at", "withdrawn_at")}
        elif record.get("status"):
            said.append((_("Status"), status_words(record["status"], key)))
        said += facts(cat, record, names)
    return {"name": name, "note": note, "facts": said, "until": _date(record.get("retain_until"))}


def _consent_note(record: dict) -> str:
    given = _date(record["granted_at"]) if record.get("granted_at") else None
    ended = _date(record["withdrawn_at"]) if record.get("withdrawn_at") else None
    if given and ended:
        return _(
            "Kept as proof that you gave consent on %(given)s, and withdrew it on %(ended)s; "
            "no longer used.",
            given=given,
            ended=ended,
        )
    if given:
        return _("Kept as proof that you gave consent on %(given)s; no longer used.", given=given)
    if ended:
        return _(
            "Kept as proof that you gave consent, and withdrew it on %(ended)s; no longer used.",
            ended=ended,
        )
    return _("Kept as proof that you gave consent; no longer used.")


def _reference(f, record: dict) -> bool:
    """The platform's own numbers — the record's, and the award an entry is about — which the
    person names it to us by ("aw-0001-nova")."""
    return (f.column == "external_id" or f.kind == "award") and bool(record.get(f.name))


def _shown(key: str, value) -> bool:
    return key not in ("retain_until", "restricted") and value not in (None, "", [], {})


class _Row:
    """A signed record read as a row: unknown columns are None."""

    def __init__(self, values: dict):
        self.__dict__.update(values)

    def __getattr__(self, name: str):
        return None


def _dicts(items) -> list[dict]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _date(value) -> str | None:
    try:
        return date_words(value) if value else None
    except (TypeError, ValueError):
        return str(value)


def _moment(value) -> str | None:
    try:
        return moment_words(value) if value else None
    except (TypeError, ValueError):
        return str(value)


def signed_on(claims: dict) -> str | None:
    """When a document was signed (its ``iat``), in words."""
    iat = claims.get("iat")
    if not isinstance(iat, int):
        return None
    return moment_words(datetime.fromtimestamp(iat, UTC))
