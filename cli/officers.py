"""``flask officers create``: privacy-officer accounts (argon2 password, TOTP)."""

import click
from flask import Flask
from flask.cli import AppGroup

from rights.errors import RightsError
from rights.ledger import officers
from storage.db import unit_of_work

group = AppGroup("officers", help="Privacy-officer accounts.")


@group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(officers.ROLES), required=True)
@click.option("--name", required=True, help="Shown on the dashboard and in the audit trail.")
@click.password_option(help=f"At least {officers.MIN_PASSWORD} characters (prompted).")
def create(email: str, role: str, name: str, password: str) -> None:
    """Create an officer; prints the authenticator enrolment URI once."""
    try:
        with unit_of_work():
            officer, uri = officers.create(email, name=name, role=role, password=password, by="cli")
    except RightsError as exc:
        fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
        raise click.UsageError(f"{exc.message} {fields}".strip()) from None
    click.echo(f"Officer {officer.id} ({role}) created.")
    click.echo("Add this to an authenticator app now (it is not shown again):")
    click.echo(uri)


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
