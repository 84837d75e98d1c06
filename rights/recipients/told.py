"""Who must be told of a request's changes, and how each was told (Art. 19).

A request that changes or erases data (:data:`CHANGES`) must be passed on to every recipient
the data went to. Who that is comes from the data map, not from who happens to have a webhook:
each category the request touched names its recipients (:mod:`storage.recipients`), and each
of those is listed with how it was told —

- through the webhook subscribers that speak for it (``Subscriber.recipient``): told (with the
  date), confirmed, being sent, or could not be reached;
- failing that, the privacy team's record that it was told by hand (:class:`RecipientNotice`:
  when, how, by whom), which an officer can correct or withdraw;
- failing that, "to be told by our privacy team".

"No recipient needed to be told" is said only when the categories the request touched went to
nobody outside the platform. Deliveries to subscribers that speak for no recipient of the data
map are still listed, under their own names; so is a recipient told that the data map did not
require (``required`` false).

What a request touched:

- rectification and restriction: the records it held back or changed — the records named and
  what the data map builds on them — read from its restrictions and the history rows naming it;
- objection and consent withdrawal: the same, which is what the purpose concerned reaches
  (:mod:`rights.contest.objections`): the consents of the purpose and, for name and likeness,
  the promotions withdrawn with them; for an objection weighed by an officer, the records held
  back meanwhile (influence scores and topics for profiling). A purpose that reached none of
  the subject's records (nothing granted, nothing held) touched nothing, and nobody is named;
- erasure: every category that held the subject's data when it was planned, erased or kept
  aside — the categories with records on the deletion receipt (read from the run's counts, with
  what is still there while the run is under way).

Processors are listed like everyone else: the fulfilment partner holds the addresses it ships
to, and the email provider the addresses and messages it sent, so each must be instructed too;
the data map declares no processor that keeps nothing.

Reading costs one query for what was touched (two for an erasure) and two for how each was
told (deliveries with their subscribers; the officers' notices), whatever the number of
recipients.

What is told is plain data in English, as signed receipts and statements carry it
(:func:`for_categories`); a person reads it in their own language (:func:`in_words`, which
:func:`of_request` applies for a request's page), from the facts it holds — who, when, by
what means — so a signed claim reads translated without changing what was signed.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time

from flask_babel import gettext as _
from sqlalchemy import exists, literal_column, select, union, union_all

from rights.errors import Invalid, NotFound
from rights.ledger import audit
from rights.recipients.webhook_subscribers import STATES
from storage import wording
from storage.cascades import row_filter
from storage.clock import utcnow
from storage.datamap import BY_KEY, CATEGORIES
from storage.db import db
from storage.models import (
    Delivery,
    ErasureRun,
    OutboxMessage,
    RecipientNotice,
    RecordHistory,
    Restriction,
    RightsRequest,
    Subject,
    Subscriber,
)
from storage.recipients import RECIPIENTS
from storage.wording import N_

# The rights whose changes recipients must be told of (Art. 19).
CHANGES = ("rectification", "erasure", "restriction", "objection", "consent_withdrawal")
MAX_HOW = 300  # RecipientNotice.how
TO_BE_TOLD = N_("to be told by our privacy team")
# How a recipient's webhook deliveries add up, worst first: one that could not be reached is
# followed up whatever the others did.
_WORST_FIRST = ("failed", "pending", "delivered", "confirmed")


def of_request(request: RightsRequest) -> dict | None:
    """Who must be told of ``request``'s changes and how each was told (see the module), in
    the language being written (:func:`in_words`), or None for a right that changes nothing
    (access, portability)."""
    if request.type not in CHANGES:
        return None
    return in_words(for_categories(request.id, touched(request)))


def touched(request: RightsRequest) -> list[str]:
    """The data map's categories whose records ``request`` changed, held back or erased, in the
    data map's order."""
    if request.type == "erasure":
        return _erased(request)
    types = set(
        db.session.execute(
            union(
                select(Restriction.record_type).where(Restriction.request_id == request.id),
                select(RecordHistory.record_type).where(RecordHistory.request_id == request.id),
            )
        ).scalars()
    )
    return [c.key for c in CATEGORIES if c.table in types]


def erased_categories(counts: dict) -> list[str]:
    """The categories an erasure run erased or kept records of (its counts), in map order."""
    return [c.key for c in CATEGORIES if (counts or {}).get(c.key, 0) > 0]


def _erased(request: RightsRequest) -> list[str]:
    run = db.session.get(ErasureRun, request.id)
    if run is None:
        return []  # not planned (yet): nothing is touched before the run fixes what is
    done = set(erased_categories(run.counts or {}))
    # While the run is under way its counts are partial: what is still there counts too.
    done |= _holding(run.subject_id)
    return [c.key for c in CATEGORIES if c.key in done]


def _holding(subject_id: str) -> set[str]:
    """The categories with records of the subject now, in one query."""
    parts = []
    for cat in CATEGORIES:
        conditions = [getattr(cat.model, cat.subject_column) == subject_id]
        if (extra := row_filter(cat)) is not None:
            conditions.append(extra)
        # Category keys are the data map's own identifiers, never input.
        parts.append(
            select(literal_column(f"'{cat.key}'").label("category")).where(
                exists().where(*conditions)
            )
        )
    return set(db.session.execute(union_all(*parts)).scalars())


def for_categories(request_id: str, categories: list[str]) -> dict:
    """Who received the data of ``categories`` (data-map keys) and how each was told of
    request ``request_id`` — plain data, as signed receipts and statements carry it:

    ``categories`` ({category, title}), ``nobody_needed`` (those categories went to nobody
    outside the platform), and ``recipients``: each with ``recipient`` (its key; None for a
    subscriber speaking for no recipient of the map), ``name``, ``received`` (what of the
    touched data it got), ``required``, ``processor``, ``state`` (confirmed, delivered,
    pending, failed — by webhook; told — by the privacy team; to_be_told), ``how`` (in plain
    words), ``told_at``, ``confirmed_at``, ``notice`` (the officers' record, if any) and
    ``events`` (each webhook delivery: subscriber, event, state). Its words are English,
    whatever the page's language (:func:`in_words` says them in another)."""
    with wording.in_language("en"):
        return _for_categories(request_id, categories)


def _for_categories(request_id: str, categories: list[str]) -> dict:
    cats = [BY_KEY[k] for k in categories if k in BY_KEY]
    received: dict[str, list[str]] = defaultdict(list)
    for cat in cats:
        for to in cat.recipients:
            received[to.key].append(f"{cat.title} ({to.only})" if to.only else cat.title)
    deliveries, notices = _deliveries(request_id), _notices(request_id)
    entries = []
    for key, recipient in RECIPIENTS.items():
        if key not in received and key not in deliveries:
            continue
        entries.append(
            _entry(
                key,
                recipient.name,
                received.get(key, []),
                deliveries.get(key, []),
                notices.get(key),
                processor=recipient.processor,
            )
        )
    # Subscribers that speak for no recipient of the map: under their own names, as before.
    for (_subscriber, name), rows in sorted(
        ((k, v) for k, v in deliveries.items() if isinstance(k, tuple)), key=lambda kv: kv[0][1]
    ):
        entries.append(_entry(None, name, [], rows, None, processor=False))
    return {
        "categories": [{"category": c.key, "title": c.title} for c in cats],
        "nobody_needed": not received,
        "recipients": entries,
    }


def _deliveries(request_id: str) -> dict:
    """The request's deliveries, by the recipient key their subscriber speaks for, or by
    (subscriber id, name) for one that speaks for none."""
    rows = db.session.execute(
        select(
            Delivery.status,
            Delivery.delivered_at,
            Delivery.confirmed_at,
            Subscriber.id,
            Subscriber.name,
            Subscriber.recipient,
            OutboxMessage.topic,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .join(OutboxMessage, OutboxMessage.id == Delivery.outbox_id)
        .where(Delivery.request_id == request_id)
        .order_by(Delivery.created_at, Subscriber.name, Delivery.id)
    ).all()
    out = defaultdict(list)
    for row in rows:
        key = row.recipient if row.recipient in RECIPIENTS else (row.id, row.name)
        out[key].append(row)
    return out


def _notices(request_id: str) -> dict[str, RecipientNotice]:
    return {
        n.recipient: n
        for n in db.session.execute(
            select(RecipientNotice).where(RecipientNotice.request_id == request_id)
        ).scalars()
    }


def _day(at) -> str:
    return wording.long_date(at)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _entry(key, name, received, deliveries, notice, *, processor) -> dict:
    entry = {
        "recipient": key,
        "name": name,
        "received": received,
        "required": bool(received),
        "processor": processor,
        "events": [
            {"subscriber": d.name, "event": d.topic, "state": STATES[d.status]} for d in deliveries
        ],
        "notice": None,
        "told_at": None,
        "confirmed_at": None,
    }
    if notice is not None:
        entry["notice"] = {
            "how": notice.how,
            "told_at": notice.told_at.isoformat(),
            "recorded_by": notice.recorded_by,
            "recorded_at": notice.recorded_at.isoformat(),
        }
    webhook = _worst(deliveries)
    if webhook in ("confirmed", "delivered"):
        told_at = max(d.delivered_at for d in deliveries if d.delivered_at)
        entry.update(state=webhook, told_at=told_at.isoformat())
        if webhook == "confirmed":
            confirmed_at = max(d.confirmed_at for d in deliveries if d.confirmed_at)
            entry["confirmed_at"] = confirmed_at.isoformat()
    elif notice is not None:
        entry.update(state="told", told_at=notice.told_at.isoformat())
    elif webhook in ("pending", "failed"):
        entry["state"] = webhook
    else:
        entry["state"] = "to_be_told"
    entry["how"] = _how(entry)
    return entry


def _how(entry: dict) -> str | None:
    """How a recipient was told, in plain words in the language being written, from what
    ``entry`` holds (its state, when it was told and confirmed, the officers' record); None
    for a state this code does not know (a claim signed by a later version)."""
    state, notice = entry.get("state"), entry.get("notice") or {}
    if state == "confirmed":
        return _(
            "told by webhook on %(told)s; confirmed they acted on %(confirmed)s",
            told=_day(entry["told_at"]),
            confirmed=_day(entry["confirmed_at"]),
        )
    if state == "delivered":
        return _(
            "told by webhook on %(told)s; received, not yet confirmed they acted",
            told=_day(entry["told_at"]),
        )
    if state == "told":
        return _(
            "told by %(officer)s on %(told)s, %(how)s",
            officer=notice["recorded_by"],
            told=_day(entry["told_at"]),
            how=notice["how"],
        )
    if state == "pending":
        return _("being told by webhook")
    if state == "failed":
        return _("could not be reached by webhook; our privacy team follows it up")
    if state == "to_be_told":
        return _(TO_BE_TOLD)
    return None


def in_words(told: dict | None) -> dict | None:
    """``told`` (as :func:`for_categories` gives it, or as a receipt or statement signed it)
    in the language being written, for a person to read: each recipient's ``how`` said again
    from its facts, the data map's words (category titles, recipients' names, what each
    received) translated where the catalogue has them. Anything it cannot read again stays as
    signed; in English it reads exactly as signed."""
    if not isinstance(told, dict):
        return told
    received = _received_words()
    out = dict(told)
    out["categories"] = [
        {**c, "title": _said(c.get("title"))}
        for c in told.get("categories") or []
        if isinstance(c, dict)
    ]
    out["recipients"] = []
    for r in told.get("recipients") or []:
        if not isinstance(r, dict):
            continue
        r = dict(r)
        try:
            r["how"] = _how(r) or r.get("how")
        except (KeyError, TypeError, ValueError):
            pass  # a claim missing a fact reads as signed
        r["name"] = _said(r.get("name"))
        r["received"] = [
            received.get(x, _said(x)) if isinstance(x, str) else x for x in r.get("received") or []
        ]
        out["recipients"].append(r)
    return out


def _said(text):
    """A word of the data map stored in English, in the language being written where the
    catalogue has it."""
    return _(text) if isinstance(text, str) and text else text


def _received_words() -> dict[str, str]:
    """What a recipient received, as :func:`for_categories` writes it in English ("Perk
    awards", "Influence scores (your score band only)"), in the language being written."""
    out = {}
    for cat in CATEGORIES:
        for to in cat.recipients:
            if to.only:
                out[f"{cat.title} ({to.only})"] = f"{_(cat.title)} ({_(to.only)})"
            else:
                out[cat.title] = _(cat.title)
    return out


def _worst(deliveries) -> str | None:
    states = {STATES[d.status] for d in deliveries}
    return next((s for s in _WORST_FIRST if s in states), None)


# --- the privacy team's record that a recipient was told by hand ----------------------------


def record_notice(
    request: RightsRequest,
    recipient: str,
    *,
    how: str,
    told_on: date,
    recorded_by: str,
    actor: str,
) -> RecipientNotice:
    """Record that ``recipient`` (a key of the data map's recipients that must be told of
    ``request``) was told by hand: ``how`` in plain words, on ``told_on`` (not in the future,
    not before the request), by ``recorded_by`` (the officer's name, shown to the subject).
    Recording again replaces what was recorded. Audited, without the free text (flushes)."""
    how = (how or "").strip()
    errors = {}
    if not how:
        errors["how"] = ["Say how they were told."]
    elif len(how) > MAX_HOW:
        errors["how"] = [f"At most {MAX_HOW} characters."]
    if told_on is None:
        errors["told_on"] = ["Give the date they were told."]
    elif told_on > utcnow().date():
        errors["told_on"] = ["The date cannot be in the future."]
    elif told_on < request.received_at.date():
        errors["told_on"] = ["The date cannot be before the request was received."]
    if errors:
        raise Invalid("The notice cannot be recorded.", errors)
    _must_be_told(request, recipient)
    told_at = datetime.combine(told_on, time(), tzinfo=UTC)
    notice = _notice(request.id, recipient)
    corrected = notice is not None
    if notice is None:
        notice = RecipientNotice(request_id=request.id, recipient=recipient)
        db.session.add(notice)
    notice.how, notice.told_at, notice.recorded_by = how, told_at, recorded_by
    notice.recorded_at = utcnow()
    audit.record(
        actor,
        "recipient_notice.corrected" if corrected else "recipient_notice.recorded",
        subject_ref=_subject_ref(request),
        target=f"request:{request.id}",
        details={"recipient": recipient, "told_on": told_on.isoformat()},
    )
    db.session.flush()
    return notice


def withdraw_notice(request: RightsRequest, recipient: str, *, actor: str) -> None:
    """Undo a recorded notice (recorded by mistake): the recipient is "to be told" again.
    Audited (flushes)."""
    notice = _notice(request.id, recipient) if recipient in RECIPIENTS else None
    if notice is None:
        raise NotFound("No notice is recorded for this recipient.")
    db.session.delete(notice)
    audit.record(
        actor,
        "recipient_notice.withdrawn",
        subject_ref=_subject_ref(request),
        target=f"request:{request.id}",
        details={"recipient": recipient},
    )
    db.session.flush()


def _must_be_told(request: RightsRequest, recipient: str) -> None:
    if request.type not in CHANGES:
        raise Invalid(
            "This request changes no data: no recipient is told of it.", {"recipient": ["none"]}
        )
    if recipient not in RECIPIENTS:
        raise Invalid("No such recipient in the data map.", {"recipient": ["unknown"]})
    if recipient not in {to.key for k in touched(request) for to in BY_KEY[k].recipients}:
        raise Invalid(
            "The data map does not say this recipient received the data this request touched.",
            {"recipient": ["not a recipient of this request's data"]},
        )


def _notice(request_id: str, recipient: str) -> RecipientNotice | None:
    return db.session.execute(
        select(RecipientNotice).where(
            RecipientNotice.request_id == request_id, RecipientNotice.recipient == recipient
        )
    ).scalar_one_or_none()


def _subject_ref(request: RightsRequest) -> str | None:
    subject = db.session.get(Subject, request.subject_id)
    return subject.ref if subject is not None else None
