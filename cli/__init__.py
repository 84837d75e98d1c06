"""``flask --app app ...`` commands: thin click shells over plain functions that tests call.

A command's changes are one unit of work (:func:`storage.db.unit_of_work`): committed when the
service calls are done — before a secret is printed, so nothing is shown that was not kept —
or rolled back when one is refused. Long work (the worker's round, an erasure, a shred)
commits step by step through :mod:`storage.steps`. (``flask db ...`` comes from Flask-Migrate.)
"""

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from cli import agents as agents_cli
from cli import audit as audit_cli
from cli import erasure as erasure_cli
from cli import keys
from cli import officers as officers_cli
from cli import retention as retention_cli
from cli import subscribers as subscribers_cli
from cli import transparency as transparency_cli
from cli.worker import worker
from demo import loader as demo
from demo import subscribers as demo_subscribers
from rights.errors import RightsError
from rights.ledger import apikeys
from rights.lifecycle import requests
from storage.db import unit_of_work

apikeys_group = AppGroup("apikeys", help="Manage API keys for the platform's services.")
demo_group = AppGroup("demo", help="Demo data.")
requests_group = AppGroup(
    "requests", help="Decide requests from the shell (the dashboard does this for officers)."
)


@apikeys_group.command("create")
@click.argument("name")
@click.option(
    "--scopes",
    required=True,
    help="Space- or comma-separated scopes, or '*' for all: " + ", ".join(sorted(apikeys.SCOPES)),
)
def apikeys_create(name: str, scopes: str) -> None:
    """Create an API key; prints the key alone on the last line (shown once)."""
    try:
        with unit_of_work():
            row, key = apikeys.create(name, apikeys.parse_scopes(scopes), actor="cli")
    except RightsError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"API key {row.name!r} (id {row.id}) with scopes: {', '.join(row.scopes)}")
    click.echo("Store it now: it is not kept and cannot be shown again.")
    click.echo(key)


@demo_group.command("load")
@click.option("--members", default=300, show_default=True, help="How many extra members.")
@click.option(
    "--receiver",
    default=None,
    metavar="URL",
    help="Also subscribe the brand and a disclosure-list consumer to webhooks at this "
    "demo receiver (python -m demo.receiver; `make run` starts one); their secrets go to "
    "instance/demo-receiver.json. Needs LETHE_WEBHOOK_ALLOW_PRIVATE_TARGETS=true for a "
    "local address.",
)
def demo_load(members: int, receiver: str | None) -> None:
    """Load the demo perk platform (idempotent: does nothing if already loaded)."""
    if current_app.config["ENV_NAME"] == "production":
        raise click.UsageError("The demo has published passwords: it is not loaded in production.")
    if not demo.safe_to_load():
        raise click.UsageError(
            "This database has real officer accounts: the demo (published sign-ins) is not "
            "loaded into it."
        )
    try:
        with unit_of_work():
            # Subscribed first: recipients are told of what the demo's own requests change.
            subscribers = demo_subscribers.subscribe_receiver(receiver) if receiver else None
            counts = demo.load(extra_members=members)
    except RightsError as exc:
        fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
        raise click.UsageError(f"{exc.message} {fields}".strip()) from None
    if subscribers is not None:  # written once kept: never a secret that was rolled back
        path = demo_subscribers.write_receiver_file(subscribers)
        click.echo(f"Demo webhook subscribers' secrets and keys written to {path} (mode 0600).")
    if counts is None:
        click.echo("Demo data already loaded.")
    else:
        click.echo("Loaded demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    click.echo(
        f"Demo dashboard sign-ins (password {demo.DEMO_PASSWORD!r}; TOTP secret for an app):"
    )
    for email, _, role, secret in demo.DEMO_OFFICERS:
        click.echo(f"  {role:8} {email:24} {secret}")


def _request(reference: str):
    req = requests.by_reference(reference)
    if req is None:
        raise click.UsageError(f"No request {reference}.")
    return req


@requests_group.command("list")
@click.option("--status", default=None, help="Only this status (e.g. open).")
def requests_list(status: str | None) -> None:
    """Requests, newest first: reference, type, status, due date."""
    page = requests.search(status=status, per_page=200)
    for req in page.items:
        click.echo(f"{req.reference}  {req.type:<18} {req.status:<22} due {req.due_at:%Y-%m-%d}")
    click.echo(f"{page.total} request(s)")


@requests_group.command("extend")
@click.argument("reference")
@click.option("--months", type=click.IntRange(1, 2), required=True)
@click.option("--reason", required=True, help="Told to the subject.")
@click.option("--actor", required=True, help="Who decides (e.g. officer name).")
def requests_extend(reference: str, months: int, reason: str, actor: str) -> None:
    """Extend a request once by one or two months (Art. 12(3)); the subject is told."""
    _decide(lambda req: requests.extend(req, months=months, reason=reason, actor=actor), reference)


@requests_group.command("refuse")
@click.argument("reference")
@click.option("--reason", required=True, help="Told to the subject, with their remedies.")
@click.option("--actor", required=True, help="Who decides (e.g. officer name).")
def requests_refuse(reference: str, reason: str, actor: str) -> None:
    """Refuse a request with a reason; the notice names the right to complain."""
    _decide(lambda req: requests.refuse(req, reason=reason, actor=actor), reference)


def _decide(action, reference: str) -> None:
    req = _request(reference)
    try:
        with unit_of_work():
            action(req)
    except RightsError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"{req.reference}: {req.status}, due {req.due_at:%Y-%m-%d}")


def init_app(app: Flask) -> None:
    app.cli.add_command(apikeys_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(requests_group)
    app.cli.add_command(worker)
    keys.init_app(app)
    erasure_cli.init_app(app)
    audit_cli.init_app(app)
    officers_cli.init_app(app)
    subscribers_cli.init_app(app)
    retention_cli.init_app(app)
    transparency_cli.init_app(app)
    agents_cli.init_app(app)
