"""The record of processing activities (GDPR Art. 30(1)), generated — never written by hand —
from the data map (what is held, about whom, why, on what basis, who receives it) and the
policy files (the time limits for erasure), with the controller's details from configuration.
The dashboard shows it and exports it as JSON and CSV; it cannot drift from what the code does.
"""

import csv
import io
from collections.abc import Iterator

from retention_policies.policies import policies
from storage import recipients
from storage.clock import utcnow
from storage.datamap import CATEGORIES, LEDGER_RECORDS, Category

# Art. 30(1)(g): what protects the data, as built (each is true of this code base).
SECURITY_MEASURES = (
    "Personal data fields (email, name, handle, address, free text, pictures) are encrypted "
    "with AES-256-GCM under a key per person; the keys are wrapped with a key-encryption key "
    "and kept in a separate key store (its own database), so backups of the main database do "
    "not carry them.",
    "Erasure destroys the person's key (crypto-shredding) and deletes the reachable rows; a "
    "tombstone log of keyed fingerprints lets a restored backup replay every erasure.",
    "Look-ups by email use a keyed blind index (HMAC-SHA256); addresses are never stored in "
    "clear and never appear in URLs or logs.",
    "Officers sign in with an argon2id password and a one-time TOTP code; sessions end after "
    "30 idle minutes and 10 hours; every route declares the role it needs.",
    "API keys, verification links and record keys are stored as hashes only and compared in "
    "constant time; tokens carry at least 128 random bits.",
    "Every access and change is written to an audit trail chained by a keyed hash, with "
    "signed checkpoints that reveal edits, deletions and a cut tail.",
    "Deletion receipts and holdings statements are signed (Ed25519, JWS) and verify against a "
    "published key set.",
    "Recipients are told of corrections and erasures by signed webhooks (Standard Webhooks); "
    "outgoing calls refuse internal addresses.",
    "Retention periods are enforced by sweeps, not only documented; legal holds are audited.",
)


def _time_limit(category_key: str, erasure_action: str | None) -> str:
    policy = policies()[category_key]
    text = f"{policy.action} {policy.period} after {policy.starts}"
    if erasure_action == "retain" and policy.retain_after_erasure:
        text += f"; after an erasure request, kept {policy.retain_after_erasure} (restricted)"
    return text


def _activity(cat: Category) -> dict:
    policy = policies()[cat.retention_policy]
    return {
        "category": cat.key,
        "title": cat.title,
        "description": cat.description,
        "purposes": list(cat.purposes),
        "legal_basis": cat.legal_basis,
        "data_subjects": list(cat.data_subjects),
        "personal_data": [f.label for f in cat.fields],
        "source": cat.source,
        "recipients": recipients.labels(cat.recipients),
        "transfers": recipients.transfers(cat.recipients),
        "profiling": cat.profiling,
        "erasure_time_limit": _time_limit(cat.retention_policy, cat.erasure.action),
        "retention_legal_basis": policy.legal_basis,
        "on_erasure_request": (
            f"kept under {cat.erasure.exception}"
            if cat.erasure.action == "retain"
            else {"delete": "deleted", "anonymise": "anonymised"}[cat.erasure.action]
        ),
    }


def build(config) -> dict:
    """The whole record, as plain data."""
    return {
        "generated_at": utcnow().isoformat(),
        "controller": {
            "name": config["CONTROLLER_NAME"],
            "contact": config["CONTROLLER_CONTACT"],
            "dpo": config["DPO_CONTACT"],
        },
        "activities": [_activity(c) for c in CATEGORIES],
        "own_records": [
            {
                "record": r.key,
                "title": r.title,
                "description": r.description,
                "erasure_time_limit": _time_limit(r.retention_policy, None),
                "legal_basis": policies()[r.retention_policy].legal_basis,
            }
            for r in LEDGER_RECORDS
        ],
        "security_measures": list(SECURITY_MEASURES),
    }


CSV_COLUMNS = (
    "section",
    "category",
    "title",
    "purposes",
    "legal_basis",
    "data_subjects",
    "personal_data",
    "source",
    "recipients",
    "transfers",
    "profiling",
    "erasure_time_limit",
    "on_erasure_request",
)


def _rows(record: dict) -> Iterator[dict]:
    controller = record["controller"]
    yield {"section": "controller", "title": controller["name"], "source": controller["contact"]}
    yield {"section": "data protection officer", "title": controller["dpo"]}
    for activity in record["activities"]:
        yield {"section": "processing activity", **activity}
    for own in record["own_records"]:
        yield {
            "section": "Lethe's own records",
            "category": own["record"],
            "title": own["title"],
            "legal_basis": own["legal_basis"],
            "erasure_time_limit": own["erasure_time_limit"],
        }
    for measure in record["security_measures"]:
        yield {"section": "security measure", "title": measure}


def to_csv(record: dict, cell=str) -> Iterator[str]:
    """The whole record as one table: the controller and DPO, one row per processing activity,
    Lethe's own records and the security measures (``section`` says which); lists joined with
    "; ". ``cell`` makes a value safe for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in _rows(record):
        values = (row.get(c) for c in CSV_COLUMNS)
        writer.writerow(
            cell("; ".join(v) if isinstance(v, list) else ("" if v is None else v)) for v in values
        )
    yield out.getvalue()
