"""``flask audit ...``: check the audit trail, and sign a checkpoint now."""

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from rights.ledger import audit_checkpoints
from storage.db import unit_of_work

group = AppGroup("audit", help="The audit trail: verify it, sign checkpoints.")


@group.command("verify")
def verify() -> None:
    """Check the hash chain and every signed checkpoint; exit 1 on any finding."""
    report = audit_checkpoints.verify()
    click.echo(f"{report.entries} entries, {report.checkpoints} checkpoint(s)")
    if report.broken_ids:
        shown = ", ".join(str(i) for i in report.broken_ids[:20])
        click.echo(f"chain broken at entries: {shown}", err=True)
    for problem in report.problems:
        click.echo(problem, err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("audit trail intact")


@group.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint at the chain's current end (the worker also does this)."""
    with unit_of_work():
        row = audit_checkpoints.write()
    click.echo(f"checkpoint {row.id} at entry {row.last_id}" if row else "nothing new")


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
