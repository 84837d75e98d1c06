"""``flask erasure ...``: run a queued erasure now, and replay erasures after a restore."""

import click
from flask import Flask
from flask.cli import AppGroup

from rights.erasure import erasure
from rights.errors import RightsError
from rights.lifecycle import requests

group = AppGroup("erasure", help="Erasure: run one now, or replay all after a restore.")


@group.command("run")
@click.argument("reference")
def run(reference: str) -> None:
    """Run (or resume) the erasure of request REFERENCE now instead of waiting for the worker."""
    req = requests.by_reference(reference)
    if req is None or req.type != "erasure":
        raise click.UsageError(f"No erasure request {reference}.")
    try:
        receipt = erasure.run(req.id, actor="cli")
    except RightsError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"{reference}: erased; receipt {receipt.id}")


@group.command("replay")
def replay() -> None:
    """After restoring a backup of the main database: erase again everyone the key store's
    tombstone log says was erased (idempotent; receipts are not re-issued)."""
    counts = erasure.replay()
    click.echo(f"replayed {counts['subjects']} erasure(s), removed {counts['rows']} row(s)")


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
