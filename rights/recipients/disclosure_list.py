"""The disclosure list: who received what, as handed to brands and regulators (FTC material
connections, 16 CFR 255.5), by brand or campaign.

It always reflects the ledger as it stands: an entry is listed only while its award says the
member received the perk, the entry itself is not withdrawn, neither the entry nor its award is
restricted (contested, objected to), and the member is not erased (records kept under a legal
exception after erasure are stored, not handed on). Rows are read in keyset batches with the
members' keys loaded once per batch, so a list of any length streams in bounded memory.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from rights.errors import Invalid
from rights.holdings import restrictions
from rights.spreadsheets import cell
from storage import vault
from storage.clock import utcnow
from storage.db import db
from storage.models import Brand, Campaign, Disclosure, Member, Perk, PerkAward, Subject

BATCH = 500
COLUMNS = [
    "disclosure_id",
    "member_id",
    "handle",
    "name",
    "perk",
    "brand_id",
    "campaign_id",
    "received_at",
    "listed_at",
]
LISTED = ("required", "disclosed")


def _scope(brand: str | None, campaign: str | None) -> dict:
    scope = {}
    if brand:
        row = db.session.execute(select(Brand.id).where(Brand.external_id == brand)).first()
        if row is None:
            raise Invalid("Unknown brand.", {"brand": ["no brand with this id"]})
        scope["brand"] = row[0]
    if campaign:
        row = db.session.execute(
            select(Campaign.id).where(Campaign.external_id == campaign)
        ).first()
        if row is None:
            raise Invalid("Unknown campaign.", {"campaign": ["no campaign with this id"]})
        scope["campaign"] = row[0]
    return scope


def _query(scope: dict, now: datetime):
    query = (
        select(
            Disclosure.id,
            Disclosure.external_id,
            Disclosure.subject_id,
            Disclosure.listed_at,
            PerkAward.received_at,
            PerkAward.status_at,
            Perk.item,
            Brand.external_id.label("brand_id"),
            Campaign.external_id.label("campaign_id"),
            Member.external_id.label("member_id"),
            Member.handle_enc,
            Member.name_enc,
        )
        .join(PerkAward, PerkAward.id == Disclosure.award_id)
        .join(Perk, Perk.id == PerkAward.perk_id)
        .join(Brand, Brand.id == Perk.brand_id)
        .outerjoin(Campaign, Campaign.id == Perk.campaign_id)
        .join(Member, Member.subject_id == Disclosure.subject_id)
        .join(Subject, Subject.id == Disclosure.subject_id)
        .where(
            Disclosure.status.in_(LISTED),
            PerkAward.status == "received",
            Disclosure.restricted_at.is_(None),
            PerkAward.restricted_at.is_(None),
            Subject.erased_at.is_(None),
            ~restrictions.in_force(Disclosure, now),
            ~restrictions.in_force(PerkAward, now),
            ~restrictions.in_force(Member, now),  # a contested name or handle
        )
        .order_by(Disclosure.id)
    )
    if "brand" in scope:
        query = query.where(Perk.brand_id == scope["brand"])
    if "campaign" in scope:
        query = query.where(Perk.campaign_id == scope["campaign"])
    return query


def entries(brand: str | None = None, campaign: str | None = None) -> Iterator[dict]:
    """The list's entries, in a stable order. Raises Invalid for an unknown brand/campaign
    (before the first entry, so callers can answer with an error)."""
    scope = _scope(brand, campaign)
    now = utcnow()
    return _entries(scope, now)


def _entries(scope: dict, now: datetime) -> Iterator[dict]:
    last = 0
    while True:
        rows = db.session.execute(_query(scope, now).where(Disclosure.id > last).limit(BATCH)).all()
        if not rows:
            return
        vault.load_keys([r.subject_id for r in rows])
        for r in rows:
            yield {
                "disclosure_id": r.external_id,
                "member_id": r.member_id,
                "handle": vault.decrypt(r.subject_id, "members.handle_enc", r.handle_enc),
                "name": vault.decrypt(r.subject_id, "members.name_enc", r.name_enc),
                "perk": r.item,
                "brand_id": r.brand_id,
                "campaign_id": r.campaign_id,
                "received_at": (r.received_at or r.status_at).isoformat(),
                "listed_at": r.listed_at.isoformat(),
            }
        last = rows[-1].id


def stream_json(rows: Iterator[dict], *, brand: str | None, campaign: str | None):
    head = {"generated_at": utcnow().isoformat(), "brand": brand, "campaign": campaign}
    yield json.dumps(head)[:-1] + ', "entries": ['
    for i, row in enumerate(rows):
        yield ("," if i else "") + json.dumps(row)
    yield "]}"


def stream_csv(rows: Iterator[dict]):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for i, row in enumerate(rows, start=1):
        writer.writerow({k: cell(v) for k, v in row.items()})
        if i % BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
