"""Who receives members' data, declared once beside the data map (:mod:`storage.datamap`).

Each category of the data map names its recipients by key (:class:`To`, with what part of the
data goes there when not all of it does). Everything that speaks of recipients reads these
declarations: the member's access report ("who we gave it to"), the record of processing's
recipients and transfers outside the EEA (Art. 30(1)(d) and (e)), and "who we told" on every
request that changes or erases data (Art. 19) — so a transfer is never "none" in one place and
"under standard contractual clauses" in another.

A recipient is told of corrections and erasures either by a webhook subscriber registered for
it (``Subscriber.recipient``), or by the privacy team, who record on the request page when, how
and by whom it was done.

The declarations are English (marked for the catalogue with :func:`storage.wording.N_`): they
travel as English into the API, the dashboard and signed receipts, and are translated where a
member reads them (``gettext``, the templates' ``translated`` filter). A name in mid-sentence
has its first letter lowered ("the platform's ad system"), so a translation starts each name
with a word that may be (German: an article or "unser", never a noun).
"""

from dataclasses import dataclass

from flask_babel import gettext as _

from storage.wording import N_

# Said of a recipient whose data stays in the EEA.
IN_EEA = N_("None: stays in the EEA")
SCC = N_(
    "May be outside the EEA: transfers rely on the European Commission's standard contractual "
    "clauses (Art. 46(2)(c) GDPR); ask us for a copy"
)


@dataclass(frozen=True)
class Recipient:
    key: str
    name: str
    description: str
    # Art. 44–49: whether data sent there may leave the EEA, and on what basis.
    transfer: str = IN_EEA
    # A processor acting only on our instructions (Art. 28), as opposed to a third party.
    processor: bool = False


RECIPIENTS: dict[str, Recipient] = {
    r.key: r
    for r in (
        Recipient(
            "email_provider",
            N_("Our email delivery provider"),
            N_("Sends the emails we write to you. It acts only on our instructions (a processor)."),
            processor=True,
        ),
        Recipient(
            "brand",
            N_("The brand giving the perk"),
            N_(
                "The company whose product the perk is, for example Nova Mobile for a Nova X1 "
                "phone. It ships the perk and may mention who received it."
            ),
            transfer=SCC,
        ),
        Recipient(
            "campaign_brands",
            N_("Brands running campaigns"),
            N_("Companies choosing whom to offer their perks to."),
            transfer=SCC,
        ),
        Recipient(
            "fulfilment",
            N_("Our fulfilment and shipping partner"),
            N_("Packs and ships perks to members."),
            processor=True,
        ),
        Recipient(
            "list_consumers",
            N_("Disclosure-list consumers (review sites, ad networks)"),
            N_(
                "Sites and networks that read the public list of who received which perk, as the "
                "FTC's endorsement rules require it to be published."
            ),
            transfer=SCC,
        ),
        Recipient(
            "regulators",
            N_("Regulators, on request"),
            N_("Consumer-protection authorities that ask to see the disclosure lists."),
        ),
        Recipient(
            "ad_system",
            N_("The platform's ad system"),
            N_("Shows promotions that name members who received a perk."),
        ),
        Recipient(
            "audience",
            N_("The audience shown (e.g. your friends)"),
            N_("People who saw a promotion with your name and picture."),
        ),
    )
}


@dataclass(frozen=True)
class To:
    """A category's data goes to a recipient: all of it, or only the part named by ``only``."""

    key: str
    only: str | None = None

    def __post_init__(self):
        if self.key not in RECIPIENTS:
            raise ValueError(f"unknown recipient {self.key!r}")

    @property
    def recipient(self) -> Recipient:
        return RECIPIENTS[self.key]

    @property
    def label(self) -> str:
        name = self.recipient.name
        return f"{name} ({self.only})" if self.only else name


NOBODY = N_("Nobody outside the platform")


def labels(tos) -> list[str]:
    """How a category's recipients read in a list: each with its part, or :data:`NOBODY` — in
    the language being written (a label is two declarations: translated one by one)."""
    return [
        f"{_(t.recipient.name)} ({_(t.only)})" if t.only else _(t.recipient.name) for t in tos
    ] or [_(NOBODY)]


def transfers(tos) -> str:
    """Art. 30(1)(e) for a category: what leaves the EEA and on what basis, from its
    recipients' declarations (the record of processing: English)."""
    abroad = [t.recipient for t in tos if t.recipient.transfer != IN_EEA]
    if not abroad:
        return N_("None outside the EEA")
    return "; ".join(f"{r.name}: {r.transfer}" for r in abroad)


def all_transfers() -> list[dict]:
    """Every recipient whose data may leave the EEA, with its basis (the member's report: as
    declared, in English; the page shows them translated)."""
    return [
        {"recipient": r.name, "basis": r.transfer}
        for r in RECIPIENTS.values()
        if r.transfer != IN_EEA
    ]
