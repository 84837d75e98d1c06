"""``flask --app app ...`` commands: thin click shells over plain functions that tests call.

(``flask db ...`` comes from Flask-Migrate.)
"""

import logging
import time

import click
from flask import Flask
from flask.cli import AppGroup

from rights import apikeys, demo, outbox
from rights.errors import RightsError
from storage.db import db

apikeys_group = AppGroup("apikeys", help="Manage API keys for the platform's services.")
demo_group = AppGroup("demo", help="Demo data.")


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
        row, key = apikeys.create(name, apikeys.parse_scopes(scopes), actor="cli")
    except RightsError as exc:
        raise click.UsageError(exc.message) from None
    db.session.commit()
    click.echo(f"API key {row.name!r} (id {row.id}) with scopes: {', '.join(row.scopes)}")
    click.echo("Store it now: it is not kept and cannot be shown again.")
    click.echo(key)


@demo_group.command("load")
@click.option("--members", default=300, show_default=True, help="How many extra members.")
def demo_load(members: int) -> None:
    """Load the demo perk platform (idempotent: does nothing if already loaded)."""
    counts = demo.load(extra_members=members)
    db.session.commit()
    if counts is None:
        click.echo("Demo data already loaded.")
    else:
        click.echo("Loaded demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def worker(once: bool, interval: float) -> None:
    """Deliver the outbox (emails now; webhooks later)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    while True:
        counts = outbox.deliver_due()
        db.session.remove()
        if once:
            click.echo(f"sent {counts['sent']}, retry {counts['retry']}, dead {counts['dead']}")
            return
        if not counts["sent"]:
            time.sleep(interval)


def init_app(app: Flask) -> None:
    app.cli.add_command(apikeys_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(worker)
