"""Dashboard forms (Flask-WTF: CSRF on every form that changes something)."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from rights.ledger import apikeys, officers
from rights.lifecycle.requests import MAX_TEXT
from rights.recipients import webhooks
from rights.reports import queue
from storage.clock import utcnow
from storage.models import RequestStatus, RequestType
from storage.recipients import RECIPIENTS
from web.public.forms import options


def choices(*pairs: tuple[str, str]) -> list[SelectChoice]:
    """Select options with no empty one (for choices that always have a value)."""
    return [SelectChoice(value, label) for value, label in pairs]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1000)])
    code = StringField(
        "Code from your authenticator app",
        description="Six digits; a code works once.",
        validators=[InputRequired(), Regexp(r"^[0-9]{6,8}$", message="six to eight digits")],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"},
    )


class QueueFilterForm(FlaskForm):
    """The queue's filters: read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        choices=choices(
            ("active", "Needs an answer"),
            ("all", "Any status"),
            *((s.value, s.value.replace("_", " ").capitalize()) for s in RequestStatus),
        ),
        default="active",
        validators=[Optional()],
    )
    type = SelectField(
        "Right",
        choices=options(*((t.value, t.value.replace("_", " ").capitalize()) for t in RequestType)),
        validators=[Optional()],
    )
    due = SelectField(
        "Deadline",
        choices=options(
            ("overdue", "Overdue"), ("week", "Due within 7 days"), ("month", "Due within 30 days")
        ),
        validators=[Optional()],
    )
    channel = SelectField(
        "Channel",
        choices=options(("web", "Web form"), ("api", "Platform API"), ("officer", "Officer")),
        validators=[Optional()],
    )
    assignee = SelectField("Held by", choices=[], validators=[Optional()])
    subject = StringField("Subject reference", validators=[Optional(), Length(max=40)])
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1, max=10**6)])

    def filters(self) -> queue.Filters:
        assignee = self.assignee.data
        return queue.Filters(
            status=self.status.data or "active",
            type=self.type.data or None,
            channel=self.channel.data or None,
            due=self.due.data or None,
            subject=(self.subject.data or "").strip() or None,
            assignee=int(assignee) if assignee and assignee.isdigit() else None,
        )


class EmailSearchForm(FlaskForm):
    """Search by the subject's email: posted (an address never goes into a URL)."""

    email = EmailField("Subject's email", validators=[InputRequired(), Email(), Length(max=254)])


def _reason(label: str, description: str) -> TextAreaField:
    return TextAreaField(
        label, description=description, validators=[InputRequired(), Length(max=MAX_TEXT)]
    )


class VerifyForm(FlaskForm):
    reason = _reason(
        "How did you check who they are?",
        "For example: called back on the number on file and they confirmed their member "
        "number. Note any doubt that remains. The subject does not see this.",
    )


class ApproveForm(FlaskForm):
    note = TextAreaField(
        "Note (optional)",
        description="For the timeline; the subject does not see it.",
        validators=[Optional(), Length(max=MAX_TEXT)],
    )


class RefuseForm(FlaskForm):
    reason = _reason(
        "Why is the request refused?",
        "Sent to the subject with their right to complain and to a judicial remedy.",
    )


class ExtendForm(FlaskForm):
    months = SelectField(
        "Extend by",
        choices=choices(("1", "1 month"), ("2", "2 months")),
        validators=[InputRequired()],
    )
    reason = _reason(
        "Why is more time needed?",
        "Sent to the subject, who must be told within the first month (Art. 12(3)).",
    )


class AskForm(FlaskForm):
    question = _reason(
        "Your question to the subject",
        "Emailed with a link to their request page, where they answer.",
    )


class LiftForm(FlaskForm):
    reason = _reason(
        "Why can the restriction end?",
        "Sent to the subject with the date the hold ends.",
    )


class CancelForm(FlaskForm):
    reason = _reason(
        "How did the subject ask to cancel?",
        "For example: phone call on 3 March, from the number on file.",
    )


class AssignForm(FlaskForm):
    officer = SelectField("Give to", choices=[], validators=[Optional()])


class OfficerForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Email(), Length(max=254)])
    name = StringField("Name", validators=[InputRequired(), Length(max=120)])
    role = SelectField(
        "Role",
        choices=choices(
            ("officer", "Officer: decides requests"),
            ("admin", "Admin: also manages officers, API keys and signing keys"),
            ("auditor", "Auditor: reads everything, changes nothing"),
        ),
        validators=[InputRequired()],
    )
    password = PasswordField(
        "Initial password",
        description=f"At least {officers.MIN_PASSWORD} characters; give it to them in person.",
        validators=[InputRequired(), Length(min=officers.MIN_PASSWORD, max=1000)],
    )


class ApiKeyForm(FlaskForm):
    name = StringField(
        "Name",
        description="Which service uses it.",
        validators=[InputRequired(), Length(max=120)],
    )
    scopes = SelectMultipleField(
        "Scopes",
        choices=choices(*((k, f"{k} — {v}") for k, v in sorted(apikeys.SCOPES.items()))),
        validators=[InputRequired(message="Choose at least one scope.")],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )


class SubscriberForm(FlaskForm):
    name = StringField(
        "Name",
        description="Who receives the events.",
        validators=[InputRequired(), Length(max=120)],
    )
    url = StringField(
        "Webhook URL",
        description="https://… on the recipient's side. Internal addresses are refused.",
        validators=[InputRequired(), Length(max=500)],
    )
    events = SelectMultipleField(
        "Also tell it of",
        choices=choices(*((e, e) for e in webhooks.EVENTS if e not in webhooks.ALWAYS)),
        validators=[Optional()],
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )
    recipient = SelectField(
        "Speaks for (recipient in the data map)",
        description="Which recipient of members' data this subscriber is: its deliveries then "
        "show as that recipient told on every request whose data went to it (Art. 19).",
        choices=options(*((k, r.name) for k, r in RECIPIENTS.items())),
        validators=[Optional()],
    )


class SubscriberRecipientForm(FlaskForm):
    """Change (or clear) which recipient of the data map a subscriber speaks for."""

    recipient = SubscriberForm.recipient


class RecipientNoticeForm(FlaskForm):
    """Art. 19 done by hand: how and when a recipient with no webhook was told (one per
    recipient on a request's page: made with ``prefix=<recipient key>``)."""

    how = StringField(
        "How they were told",
        description="In plain words, shown to the subject: e.g. by email to their privacy contact.",
        validators=[InputRequired(), Length(max=300)],
    )
    told_on = DateField(
        "When",
        description="Not in the future.",
        default=lambda: utcnow().date(),
        validators=[InputRequired()],
    )


class DeliveryFilterForm(FlaskForm):
    class Meta:
        csrf = False

    state = SelectField(
        "State",
        choices=choices(
            ("", "All"),
            ("pending", "Pending"),
            ("delivered", "Delivered, not confirmed"),
            ("confirmed", "Confirmed"),
            ("failed", "Failed"),
        ),
        validators=[Optional()],
    )
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1, max=10**6)])


class HoldForm(FlaskForm):
    scope = SelectField(
        "Hold",
        choices=choices(
            ("subject", "A person's records (by pseudonymous reference)"),
            ("campaign", "A campaign's records (by campaign id)"),
            ("category", "A whole category"),
        ),
        validators=[InputRequired()],
    )
    target = StringField(
        "Which",
        description="sub_… for a person (on their request page), the campaign's id (e.g. "
        "c-launch), or the category's key (e.g. perk_awards).",
        validators=[InputRequired(), Length(max=80)],
    )
    reason = TextAreaField(
        "Why the records must be kept",
        description="E.g. the case or inquiry. Say nothing about the person: it is shown to "
        "every officer.",
        validators=[InputRequired(), Length(max=500)],
    )
    ends_at = DateField(
        "Until",
        description="Leave empty to hold until released.",
        validators=[Optional()],
    )


class ConfirmForm(FlaskForm):
    """A button that changes something: CSRF only."""

    confirm = BooleanField("I understand", validators=[Optional()])


class IncidentForm(FlaskForm):
    title = StringField("Title", validators=[InputRequired(), Length(max=200)])
    root_cause = TextAreaField(
        "Root cause (as far as known)",
        description="You can complete it later on the incident's page.",
        validators=[Optional(), Length(max=MAX_TEXT)],
    )
    perk = StringField(
        "Perk",
        description="The perk's id, e.g. p-nova-x1 (shown on the award in the records page).",
        validators=[InputRequired(), Length(max=80)],
    )
    source = StringField(
        "Written by (source process)",
        description="Only awards this process wrote, e.g. fulfilment-sync. Optional.",
        validators=[Optional(), Length(max=80)],
    )
    status = SelectField(
        "Marked as",
        choices=choices(("received", "Received"), ("shipped", "Shipped"), ("claimed", "Claimed")),
        default="received",
    )
    since = DateField("From (optional)", validators=[Optional()])
    until = DateField("Until (optional)", validators=[Optional()])
    no_shipment = BooleanField("Only where no shipment was recorded", default=True)

    def record_filter(self) -> dict:
        return {
            "perk": self.perk.data,
            "source": self.source.data,
            "status": self.status.data,
            "since": f"{self.since.data.isoformat()}T00:00:00+00:00" if self.since.data else None,
            "until": f"{self.until.data.isoformat()}T00:00:00+00:00" if self.until.data else None,
            "no_shipment": self.no_shipment.data,
        }


class RootCauseForm(FlaskForm):
    root_cause = TextAreaField("Root cause", validators=[InputRequired(), Length(max=MAX_TEXT)])


class ApologyForm(FlaskForm):
    apology_subject = StringField("Email subject", validators=[InputRequired(), Length(max=200)])
    apology_body = TextAreaField(
        "The apology",
        description="Written once, sent to each member touched. You may use {name}, {perk} "
        "and {incident}.",
        validators=[InputRequired(), Length(max=MAX_TEXT)],
    )


def _stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class AgentForm(FlaskForm):
    """Register an agent; its fields are named as :func:`rights.agents.registry.add` names
    them in its field errors. The service checks the id's characters and the key."""

    agent_id = StringField(
        "Agent id",
        description="As its service directory entry gives it, e.g. CR_AA_DRP_ID_001: letters, "
        "digits and _ . : - only. A removed agent can be registered again (with a new key).",
        filters=[_stripped],
        validators=[InputRequired(), Length(max=100)],
        render_kw={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"},
    )
    name = StringField(
        "Name",
        description="As people know it: a person whose request it sends reads that it was "
        "filed for them by this name.",
        validators=[InputRequired(), Length(max=120)],
    )
    verify_key = StringField(
        "Verify key",
        description="Its Ed25519 public key, from the same entry: base64 (44 characters, "
        "ending in =) or hex (64 characters).",
        filters=[_stripped],
        validators=[InputRequired(), Length(max=200)],
        render_kw={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"},
    )
