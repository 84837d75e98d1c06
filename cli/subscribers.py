"""``flask subscribers add URL --events … --name … [--recipient KEY]``: downstream recipients of
signed webhooks, each optionally speaking for a recipient of the data map."""

import click
from flask import Flask
from flask.cli import AppGroup

from rights.errors import RightsError
from rights.recipients import webhooks
from storage.db import unit_of_work
from storage.recipients import RECIPIENTS

group = AppGroup("subscribers", help="Webhook subscribers (Art. 19 recipients).")


@group.command("add")
@click.argument("url")
@click.option("--events", required=True, help=f"Comma-separated: {', '.join(webhooks.EVENTS)}.")
@click.option("--name", required=True, help="Who receives them (a brand, the ad system…).")
@click.option(
    "--recipient",
    default=None,
    help=f"The recipient of the data map it speaks for: {', '.join(RECIPIENTS)}.",
)
def add(url: str, events: str, name: str, recipient: str | None) -> None:
    """Register a subscriber; prints its whsec_ secret and its confirmation API key once."""
    try:
        with unit_of_work():
            sub, secret, key = webhooks.add(
                name,
                url,
                [e.strip() for e in events.split(",") if e.strip()],
                actor="cli",
                recipient=recipient,
            )
    except RightsError as exc:
        fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
        raise click.UsageError(f"{exc.message} {fields}".strip()) from None
    click.echo(f"Subscriber {sub.id} ({sub.name}) for {', '.join(sub.events)}.")
    if sub.recipient:
        click.echo(f"Speaks for: {RECIPIENTS[sub.recipient].name}.")
    click.echo("Shown once; store both now:")
    click.echo(f"signing secret: {secret}")
    click.echo(f"confirmation API key: {key}")


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
