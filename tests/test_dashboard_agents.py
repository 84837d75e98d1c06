"""Authorized agents (Data Rights Protocol) on the dashboard, as ``flask agents`` does on the
command line: admins register agents (bad ids and keys get the form back with field errors,
a second agent with the same id is refused in words) and remove them; auditors read the list;
officers get nothing. The page never shows a token's hash, and every change is audited."""

import base64
import json
from datetime import UTC, datetime, timedelta

from nacl.encoding import Base64Encoder, HexEncoder
from nacl.signing import SigningKey
from sqlalchemy import select

from rights.agents import registry
from storage.db import db
from storage.models import Agent, AuditEvent

AGENT = "CR_AA_DRP_ID_001"


def _key(encoder=Base64Encoder) -> tuple[SigningKey, str]:
    key = SigningKey.generate()
    return key, key.verify_key.encode(encoder=encoder).decode()


def _register(admin, agent_id=AGENT, name="Permission Slip", verify_key=None):
    if verify_key is None:
        verify_key = _key()[1]
    return admin.post(
        "/dashboard/agents",
        data={"agent_id": agent_id, "name": name, "verify_key": verify_key},
    )


def _page(client) -> str:
    resp = client.get("/dashboard/agents")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _row(page: str, text: str) -> str:
    (row,) = [r.split("</tr>")[0] for r in page.split("<tr")[1:] if text in r.split("</tr>")[0]]
    return row


def _agents(app) -> list[Agent]:
    with app.app_context():
        return list(db.session.execute(select(Agent)).scalars())


def _audited(app, action) -> list[tuple[str, str]]:
    with app.app_context():
        return db.session.execute(
            select(AuditEvent.actor, AuditEvent.target).where(AuditEvent.action == action)
        ).all()


def _pair(app, client, key: SigningKey, agent_id=AGENT):
    now = datetime.now(UTC)
    claims = {
        "agent-id": agent_id,
        "business-id": app.config["DRP_BUSINESS_ID"],
        "issued-at": now.isoformat(timespec="milliseconds"),
        "expires-at": (now + timedelta(minutes=15)).isoformat(timespec="milliseconds"),
    }
    return client.post(
        f"/v1/agent/{agent_id}",
        data=base64.b64encode(key.sign(json.dumps(claims).encode())),
        headers={"Content-Type": "text/plain"},
    )


def test_an_admin_registers_an_agent_and_sees_it_listed(app, login_as):
    admin = login_as("admin", name="Ada Admin")
    key, encoded = _key()
    resp = _register(admin, verify_key=encoded)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/dashboard/agents")
    page = _page(admin)
    assert "Permission Slip (CR_AA_DRP_ID_001) is registered" in page  # the flashed message
    row = _row(page, "Permission Slip")
    assert AGENT in row and "not paired yet" in row and "active" in row
    assert "by Ada Admin" in row and "Remove" in row
    assert encoded not in page  # the key is not echoed back either
    (agent,) = _agents(app)
    assert agent.id == AGENT and agent.verify_key == bytes(key.verify_key)
    assert agent.created_by == f"officer:{admin.officer_id}" and agent.active
    assert _audited(app, "agent.registered") == [(f"officer:{admin.officer_id}", f"agent:{AGENT}")]
    assert 'aria-current="page">Agents</a>' in page


def test_a_hex_key_is_taken_and_the_command_lines_agents_are_listed_too(app, login_as, runner):
    admin = login_as("admin")
    assert _register(admin, "HEX_AGENT", "Hex", _key(HexEncoder)[1]).status_code == 303
    result = runner.invoke(
        args=["agents", "add", "CLI_AGENT", "--name", "From the shell", "--verify-key", _key()[1]]
    )
    assert result.exit_code == 0, result.output
    page = _page(admin)
    assert "HEX_AGENT" in page and "by the command line" in _row(page, "CLI_AGENT")


def test_bad_ids_and_keys_get_the_form_back_and_register_nothing(app, login_as):
    admin = login_as("admin")
    for form, field, said in (
        ({"verify_key": "not a key"}, "verify_key", "the verify key is neither base64 nor hex"),
        ({"verify_key": base64.b64encode(b"x" * 16).decode()}, "verify_key", "32 bytes"),
        ({"agent_id": "has spaces/and slashes"}, "agent_id", "letters, digits and _ . : - only"),
        ({"agent_id": "x" * 101}, "agent_id", "longer than 100"),
        ({"name": ""}, "name", "This field is required."),
        ({"verify_key": ""}, "verify_key", "This field is required."),
    ):
        resp = _register(admin, **form)
        assert resp.status_code == 422, form
        page = resp.get_data(as_text=True)
        # Next to its field (the macro's error paragraph, which the input is described by)...
        error = page.split(f'id="{field}-error">')[1].split("</p>")[0]
        assert said in error, (form, error)
        assert f'aria-describedby="{field}-hint {field}-error"' in page, form
        # ...and in the summary at the top of the form.
        assert "Check the form:" in page, form
    assert _agents(app) == []
    assert _audited(app, "agent.registered") == []


def test_a_second_agent_with_the_same_id_is_refused_in_words(app, login_as):
    admin = login_as("admin")
    assert _register(admin).status_code == 303
    resp = _register(admin, name="Someone else")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    error = page.split('id="agent_id-error">')[1].split("</p>")[0]
    assert "An agent with that id is registered already." in error
    (agent,) = _agents(app)
    assert agent.name == "Permission Slip"
    assert len(_audited(app, "agent.registered")) == 1


def test_removing_an_agent_stops_it_and_is_audited(app, login_as, client):
    admin = login_as("admin")
    key, encoded = _key()
    _register(admin, verify_key=encoded)
    assert _pair(app, client, key).status_code == 200
    resp = admin.post(f"/dashboard/agents/{AGENT}/remove")
    assert resp.status_code == 303
    page = _page(admin)
    assert "is removed" in page  # the flashed message
    row = _row(page, f"<code>{AGENT}</code>")
    assert "removed" in row and "Remove…" not in row and "<form" not in row
    with app.app_context():
        assert registry.active(AGENT) is None
        assert db.session.get(Agent, AGENT).token_hash is None
    assert _audited(app, "agent.removed") == [(f"officer:{admin.officer_id}", f"agent:{AGENT}")]
    # Its signed messages are refused from now on.
    assert _pair(app, client, key).status_code == 403
    # A second click (a stale page) changes nothing and says so; an unknown id is a 404.
    again = admin.post(f"/dashboard/agents/{AGENT}/remove", follow_redirects=True)
    assert "was removed already" in again.get_data(as_text=True)
    assert len(_audited(app, "agent.removed")) == 1
    assert admin.post("/dashboard/agents/NOBODY/remove").status_code == 404
    # A removed agent can be registered again (an agent that changed its key): active, unpaired.
    assert _register(admin, name="Again").status_code == 303
    with app.app_context():
        again = registry.active(AGENT)
        assert again is not None and again.name == "Again" and again.token_hash is None


def test_the_page_never_shows_a_token_hash(app, login_as, client):
    admin = login_as("admin")
    key, encoded = _key()
    _register(admin, verify_key=encoded)
    paired = _pair(app, client, key)
    assert paired.status_code == 200, paired.data
    token = paired.get_json()["token"]
    with app.app_context():
        token_hash = db.session.get(Agent, AGENT).token_hash
    assert token_hash
    page = _page(admin)
    assert "paired " in _row(page, "Permission Slip")
    assert token_hash not in page and token not in page
    assert token_hash not in _page(login_as("auditor"))


def test_who_may_read_and_who_may_change_the_agents(app, login_as):
    admin = login_as("admin")
    _register(admin)
    # An officer: neither the page nor the changes, refused as everywhere (and audited).
    officer = login_as("officer")
    assert officer.get("/dashboard/agents").status_code == 403
    assert _register(officer, "OTHER").status_code == 403
    assert officer.post(f"/dashboard/agents/{AGENT}/remove").status_code == 403
    assert 'href="/dashboard/agents"' not in officer.get("/dashboard/").get_data(as_text=True)
    # An auditor reads the list, without the form or the remove buttons, and changes nothing.
    auditor = login_as("auditor")
    page = _page(auditor)
    assert "Permission Slip" in page and "Register an agent" not in page and "Remove" not in page
    assert _register(auditor, "OTHER").status_code == 403
    assert auditor.post(f"/dashboard/agents/{AGENT}/remove").status_code == 403
    assert [a.id for a in _agents(app)] == [AGENT]
    with app.app_context():
        assert registry.active(AGENT) is not None
    denied = _audited(app, "authz.denied")
    assert (f"officer:{officer.officer_id}", "dashboard.agents_page") in denied
    assert (f"officer:{auditor.officer_id}", "dashboard.agent_remove") in denied
    # Signed out: to the sign-in page.
    anonymous = app.test_client().get("/dashboard/agents")
    assert anonymous.status_code == 302 and "/dashboard/login" in anonymous.headers["Location"]
