"""``flask agents ...``: the authorized agents (Data Rights Protocol) Lethe accepts requests
from, as their service directory entries give them."""

import click
from flask import Flask
from flask.cli import AppGroup

from rights.agents import registry
from rights.errors import RightsError
from storage.db import unit_of_work

group = AppGroup("agents", help="Authorized agents (Data Rights Protocol): register, list, remove.")


@group.command("add")
@click.argument("agent_id")
@click.option("--name", required=True, help="The agent's name, as people know it.")
@click.option(
    "--verify-key", required=True, help="Its Ed25519 verify key, base64 (or hex), as listed."
)
@click.option("--actor", default="cli", show_default=True)
def add(agent_id: str, name: str, verify_key: str, actor: str) -> None:
    """Register AGENT_ID (its DRP agent-id) with its verify key."""
    try:
        with unit_of_work():
            registry.add(agent_id, name, verify_key, actor=actor)
    except RightsError as exc:
        raise click.ClickException(_said(exc)) from None
    click.echo(f"agent {agent_id} registered; it pairs with POST /v1/agent/{agent_id}")


@group.command("list")
def list_agents() -> None:
    """The registered agents: id, name, whether paired, whether active."""
    for agent in registry.listed():
        paired = f"paired {agent.paired_at:%Y-%m-%d %H:%M}" if agent.paired_at else "not paired"
        state = "active" if agent.active else "removed"
        click.echo(f"{agent.id}\t{agent.name}\t{paired}\t{state}")


@group.command("remove")
@click.argument("agent_id")
@click.option("--actor", default="cli", show_default=True)
def remove(agent_id: str, actor: str) -> None:
    """Stop accepting AGENT_ID: its token and its signatures are refused from now on."""
    try:
        with unit_of_work():
            registry.remove(agent_id, actor=actor)
    except RightsError as exc:
        raise click.ClickException(_said(exc)) from None
    click.echo(f"agent {agent_id} removed")


def _said(exc: RightsError) -> str:
    fields = getattr(exc, "fields", None) or {}
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items())
    return f"{exc} {details}".strip()


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
