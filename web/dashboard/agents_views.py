"""Authorized agents (Data Rights Protocol), for admins: the agents Lethe accepts requests
from, registering one with the id and verify key its service directory entry gives, and
removing one (its token and its signatures are refused from then on) — as ``flask agents
add|list|remove`` does on the command line. A token's hash never reaches the page: the rows
handed to the template carry none."""

from dataclasses import dataclass
from datetime import datetime

from flask import abort, flash, redirect, render_template, url_for

from rights.agents import registry
from rights.reports import queue
from web.actions import attempt
from web.dashboard import actor, bp, requires
from web.dashboard.forms import AgentForm, ConfirmForm

NO_FIELD = "agent_id"  # where a refusal that names no field is shown: it is about the id
# Who registered an agent, as the page says it: officers by name; ``flask agents add`` signs
# as "cli" unless told otherwise.
COMMAND_LINE = {"cli": "the command line"}


@dataclass(frozen=True)
class AgentRow:
    """An agent as the page shows it: no verify key, no token hash."""

    id: str
    name: str
    active: bool
    paired_at: datetime | None
    created_at: datetime
    created_by: str


def _rows() -> list[AgentRow]:
    return [
        AgentRow(a.id, a.name, a.active, a.paired_at, a.created_at, a.created_by)
        for a in registry.listed()
    ]


@bp.get("/agents")
@requires("settings.read")
def agents_page():
    return _agents(AgentForm())


def _agents(form, status=200):
    return render_template(
        "dashboard/agents.html",
        form=form,
        agents=_rows(),
        names={**COMMAND_LINE, **queue.officer_names()},
        confirm=ConfirmForm(),
    ), status


@bp.post("/agents")
@requires("agents.manage")
def agent_create():
    form = AgentForm()
    if form.validate_on_submit():
        added = attempt(
            lambda: registry.add(
                form.agent_id.data, form.name.data, form.verify_key.data, actor=actor()
            ),
            form=form,
        )
        if added:
            agent = added.value
            flash(
                f"{agent.name} ({agent.id}) is registered. It pairs by sending a message signed "
                f"with its key to POST /v1/agent/{agent.id}, and gets its access token in reply."
            )
            return redirect(url_for("dashboard.agents_page"), code=303)
        if not added.error.fields:  # "registered already": about the id
            field = getattr(form, NO_FIELD)
            field.errors = [*field.errors, added.error.message]
    return _agents(form, 422)


@bp.post("/agents/<agent_id>/remove")
@requires("agents.manage")
def agent_remove(agent_id: str):
    agent = next((row for row in _rows() if row.id == agent_id), None)
    if agent is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    # Asked for a state, not a toggle: a second click or a stale page changes nothing.
    if not agent.active:
        flash(f"{agent.name} ({agent.id}) was removed already.")
    elif attempt(lambda: registry.remove(agent.id, actor=actor()), flash_error=True):
        flash(
            f"{agent.name} ({agent.id}) is removed: its access token and its signed messages "
            "are refused from now on."
        )
    return redirect(url_for("dashboard.agents_page"), code=303)
