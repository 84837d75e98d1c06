"""Loading and validating the policy files, checked against the data map at start-up."""

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from flask_babel import ngettext

from storage.clock import add_months
from storage.datamap import CATEGORIES, LEDGER_RECORDS, Category, LedgerRecord
from storage.wording import N_

POLICY_DIR = Path(__file__).parent
ACTIONS = ("delete", "anonymise")
# The events that start a retention clock, and how to say them to a person (English, as the
# access report's JSON says them; translated where a member reads them: gettext(policy.starts)).
TRIGGERS = {
    "account_closed": N_("the account is closed"),
    "score_computed": N_("the score was computed"),
    "record_recorded": N_("the record was made"),
    "award_last_status": N_("the award's last status change"),
    "disclosure_listed": N_("the entry was listed"),
    "promotion_shown": N_("the promotion was shown"),
    "consent_ended": N_("the consent was withdrawn or the account closed"),
    "request_closed": N_("the request was closed"),
    "notice_written": N_("the message was written"),
    "receipt_issued": N_("the receipt was issued"),
    "erased": N_("the person was erased"),
    "delivery_settled": N_("the delivery was confirmed, delivered or given up"),
    "sweep_run": N_("the sweep ran"),
    "entry_written": N_("the entry was written"),
    "token_expired": N_("the link expired"),
    "request_answered": N_("the answer was given"),
}
REQUIRED = ("category", "description", "period", "trigger", "action", "legal_basis", "purpose")
OPTIONAL = ("retain_after_erasure",)
_PERIOD = re.compile(r"^\s*(\d{1,4})\s+(day|days|month|months|year|years)\s*$")


class PolicyError(ValueError):
    """A policy file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Period:
    amount: int
    unit: str  # days | months | years

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit.rstrip("s")
        return f"{self.amount} {unit}"

    def in_words(self) -> str:
        """The period as a member reads it, in the language being written ("5 years" /
        "5 Jahre"); ``str(period)`` is the English one stored and sent."""
        if self.unit == "days":
            return ngettext("%(num)d day", "%(num)d days", self.amount)
        if self.unit == "months":
            return ngettext("%(num)d month", "%(num)d months", self.amount)
        return ngettext("%(num)d year", "%(num)d years", self.amount)

    def before(self, end: datetime) -> datetime:
        """``end`` minus this period: what started at or before it has run its course by
        ``end`` (never a day early: a clamped month end only makes it later)."""
        if self.unit == "days":
            return end - timedelta(days=self.amount)
        months = self.amount * (12 if self.unit == "years" else 1)
        return add_months(end, -months)

    def after(self, start: datetime) -> datetime:
        """``start`` plus this period; months and years clamp to the end of a shorter month."""
        if self.unit == "days":
            return start + timedelta(days=self.amount)
        months = self.amount * (12 if self.unit == "years" else 1)
        return add_months(start, months)


def parse_period(text: object, where: str) -> Period:
    m = _PERIOD.match(text) if isinstance(text, str) else None
    too_long = m and m.group(2).startswith("year") and int(m.group(1)) > 100
    if not m or int(m.group(1)) == 0 or too_long:
        raise PolicyError(
            f"{where}: expected a period like '30 days', '12 months' or '5 years' (at most a "
            f"century), got {text!r}"
        )
    unit = m.group(2) if m.group(2).endswith("s") else m.group(2) + "s"
    return Period(int(m.group(1)), unit)


@dataclass(frozen=True)
class Policy:
    category: str
    description: str
    period: Period
    trigger: str
    action: str
    legal_basis: str
    purpose: str
    retain_after_erasure: Period | None
    file: str

    @property
    def starts(self) -> str:
        return TRIGGERS[self.trigger]


def _load_file(path: Path) -> Policy:
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{name}: not valid TOML ({exc})") from None
    for key in REQUIRED:
        if key not in data:
            raise PolicyError(f"{name}: field '{key}' is missing")
        if not isinstance(data[key], str) or not data[key].strip():
            raise PolicyError(f"{name}: field '{key}' must be a non-empty string")
    unknown = set(data) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise PolicyError(f"{name}: unknown field '{sorted(unknown)[0]}'")
    if data["action"] not in ACTIONS:
        raise PolicyError(f"{name}: field 'action' must be one of {', '.join(ACTIONS)}")
    if data["trigger"] not in TRIGGERS:
        raise PolicyError(f"{name}: field 'trigger' must be one of {', '.join(TRIGGERS)}")
    if path.stem != data["category"]:
        raise PolicyError(f"{name}: field 'category' must match the file name ({path.stem})")
    retain = data.get("retain_after_erasure")
    return Policy(
        category=data["category"],
        description=data["description"],
        period=parse_period(data["period"], f"{name}: field 'period'"),
        trigger=data["trigger"],
        action=data["action"],
        legal_basis=data["legal_basis"],
        purpose=data["purpose"],
        retain_after_erasure=(
            parse_period(retain, f"{name}: field 'retain_after_erasure'") if retain else None
        ),
        file=name,
    )


def load_policies(directory: Path = POLICY_DIR) -> dict[str, Policy]:
    """Read and validate every ``*.toml`` in ``directory`` against the data map.

    Raises :class:`PolicyError` naming the file and field for any problem: a malformed file, a
    category with no policy, a policy for no category, or a category retained after erasure
    whose policy does not say for how long.
    """
    loaded = {}
    for path in sorted(directory.glob("*.toml")):
        policy = _load_file(path)
        loaded[policy.category] = policy
    known = {c.retention_policy for c in CATEGORIES} | {r.retention_policy for r in LEDGER_RECORDS}
    for key in sorted(set(loaded) - known):
        raise PolicyError(f"{loaded[key].file}: field 'category': no data-map category '{key}'")
    for record in LEDGER_RECORDS:
        if record.retention_policy not in loaded:
            raise PolicyError(f"{record.retention_policy}.toml: missing (Lethe's {record.key})")
    for record in LEDGER_RECORDS:
        _check_clock(loaded[record.retention_policy], record)
    for cat in CATEGORIES:
        policy = loaded.get(cat.retention_policy)
        if policy is None:
            raise PolicyError(f"{cat.retention_policy}.toml: missing (data-map category {cat.key})")
        if cat.erasure.action == "retain" and policy.retain_after_erasure is None:
            raise PolicyError(
                f"{policy.file}: field 'retain_after_erasure' is required: erasure retains "
                f"category '{cat.key}'"
            )
        _check_clock(policy, cat)
    return loaded


def _check_clock(policy: Policy, entry: Category | LedgerRecord) -> None:
    """The trigger must be something the table itself can tell (else its rows would never
    expire, or expire with another table's), and the action one the table can take."""
    from retention_policies import clocks  # noqa: PLC0415 - clocks reads the models

    model, subject_column = entry.model, entry.subject_column
    table = model.__table__
    try:
        clocks.started(policy.trigger, model, entry.clock)
    except (AttributeError, KeyError):
        raise PolicyError(
            f"{policy.file}: field 'trigger': {table.name} cannot tell when "
            f"'{policy.trigger}' happened"
        ) from None
    if policy.action == "anonymise":
        unique_subject = any(c.unique for c in table.columns if c.name == subject_column) or any(
            getattr(con, "columns", None) is not None
            and [c.name for c in con.columns] == [subject_column]
            for con in table.constraints
            if con.__class__.__name__ == "UniqueConstraint"
        )
        kept_enc = [c.name for c in table.columns if c.name.endswith("_enc") and not c.nullable]
        if subject_column is None or unique_subject or kept_enc:
            raise PolicyError(
                f"{policy.file}: field 'action': {table.name} cannot be anonymised (it needs a "
                "person column that can change, and encrypted columns that can be emptied); "
                "use delete"
            )


@cache
def policies() -> dict[str, Policy]:
    """The policies shipped in this folder (validated once per process)."""
    return load_policies(POLICY_DIR)
