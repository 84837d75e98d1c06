"""Forms of the public pages (Flask-WTF: CSRF on every form)."""

from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import (
    EmailField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Email, InputRequired, Length, Optional

from web.api.errors import flatten
from web.api.schemas import RequestIn
from web.validation import clean_text

RIGHTS = [
    (
        "access",
        "See my data",
        "Get a copy of everything the platform holds about you, where "
        "each record came from, who it was shared with and how long it is kept.",
    ),
    (
        "portability",
        "Take my data elsewhere",
        "Download the data you gave the platform, as "
        "JSON or spreadsheet (CSV) files, to move it to another service.",
    ),
    (
        "rectification",
        "Correct my data",
        "Tell us which records are wrong and what is right, "
        "for example an award that says you received a perk you never got.",
    ),
    (
        "erasure",
        "Delete my data",
        "Have your data erased and your account closed. Some records "
        "may have to be kept by law; we tell you which, why and until when.",
    ),
    (
        "restriction",
        "Pause the use of my data",
        "Have records kept but not used while their accuracy or our reasons are checked.",
    ),
    (
        "objection",
        "Object to a use of my data",
        "Stop marketing, the use of your name or face in promotions, or the influence scoring.",
    ),
    (
        "consent_withdrawal",
        "Withdraw my consent",
        "Take back a consent you gave, as easily as you gave it.",
    ),
]
RIGHT_KEYS = [r[0] for r in RIGHTS]


def options(*pairs: tuple[str, str]) -> list[SelectChoice]:
    """Select options led by an empty one, so an optional choice can always be undone."""
    return [SelectChoice("", "— choose —"), *(SelectChoice(v, label) for v, label in pairs)]


class RequestForm(FlaskForm):
    type = RadioField(
        "What would you like to do?",
        choices=[SelectChoice(k, t) for k, t, _ in RIGHTS],
        validators=[InputRequired("Choose what you would like to do.")],
    )
    email = EmailField(
        "Your email address",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"autocomplete": "email"},
        description="The address you use on the platform. We send a link to it to confirm it "
        "is you.",
        validators=[
            InputRequired("Enter your email address."),
            Email("Enter an email address like name@example.com."),
            Length(max=254),
        ],
    )
    records = StringField(
        "Which records? (optional)",
        description="Award, disclosure or promotion numbers from your access report (or "
        "profile.name, profile.address…), separated by commas. Leave empty if you are not sure: "
        "once you confirm your email you can tick them on your request's page.",
        validators=[Optional(), Length(max=2000)],
    )
    correction = TextAreaField(
        "What is wrong, and what is right?", validators=[Optional(), Length(max=5000)]
    )
    statement = TextAreaField(
        "A statement to add to your records (optional)",
        description="Your own words, kept with the records you name (Art. 16: a supplementary "
        "statement).",
        validators=[Optional(), Length(max=5000)],
    )
    pictures = MultipleFileField(
        "Pictures that show what is right (optional)",
        description="Up to 3 JPEG, PNG or WebP pictures of at most 4 MB each. We keep only the "
        "picture itself: location, camera and other hidden data are removed.",
        render_kw={"accept": "image/jpeg,image/png,image/webp"},
    )
    reason = TextAreaField(
        "Anything you want us to know (optional)", validators=[Optional(), Length(max=2000)]
    )
    grounds = SelectField(
        "Why should the use be paused?",
        choices=options(
            ("accuracy_contested", "The data is wrong"),
            ("unlawful_processing", "The use is unlawful but I want the data kept"),
            ("legal_claims", "I need the data kept for a legal claim"),
            ("objection_pending", "I have objected and want a pause meanwhile"),
        ),
        validators=[Optional()],
    )
    purpose = SelectField(
        "What do you object to?",
        choices=options(
            ("direct_marketing", "Marketing emails and offers"),
            ("likeness", "Use of my name or face in promotions"),
            ("profiling", "Influence scoring (profiling)"),
            ("legitimate_interests", "Another use based on legitimate interests"),
        ),
        validators=[Optional()],
    )
    consent_purpose = SelectField(
        "Which consent?",
        choices=options(
            ("name_and_likeness", "Use of my name and likeness"),
            ("email_marketing", "Marketing emails"),
        ),
        validators=[Optional()],
    )

    # Which extra fields each right needs, and which it uses at all. A field filled in for a
    # right that does not use it is an error to fix, never silently dropped.
    REQUIRED_BY_TYPE = {
        "rectification": ("correction",),
        "restriction": ("grounds",),
        "objection": ("purpose",),
        "consent_withdrawal": ("consent_purpose",),
    }
    USED_BY_TYPE = {
        "access": ("reason",),
        "portability": ("reason",),
        "rectification": ("records", "correction", "statement", "pictures", "reason"),
        "erasure": ("reason",),
        "restriction": ("records", "grounds", "correction", "reason"),
        "objection": ("purpose", "reason"),
        "consent_withdrawal": ("consent_purpose", "reason"),
    }
    TYPE_SPECIFIC = (
        "records",
        "correction",
        "statement",
        "pictures",
        "grounds",
        "purpose",
        "consent_purpose",
    )

    # The API's field names that the form spells otherwise.
    FORM_NAME = {"grounds_text": "reason"}
    UNSTORABLE = (
        "Your answer to “{label}” holds a character we cannot store (an invisible control "
        "character): delete it and type the text again."
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        chosen = self.type.data
        if chosen not in self.USED_BY_TYPE:
            return ok
        for name in self.REQUIRED_BY_TYPE.get(chosen, ()):
            field = getattr(self, name)
            if not field.data:
                field.errors = [*field.errors, f"Needed for this request: {field.label.text}"]
                ok = False
        for name in self.TYPE_SPECIFIC:
            field = getattr(self, name)
            given = self.uploads() if name == "pictures" else field.data
            if given and name not in self.USED_BY_TYPE[chosen]:
                field.errors = [
                    *field.errors,
                    "Not used for the right you chose: empty it, or choose another right.",
                ]
                ok = False
        if self._nameless:
            self.pictures.errors = [
                *self.pictures.errors,
                "A file arrived without its name, so we could not check it: choose it again.",
            ]
            ok = False
        return ok and self._checked_as_the_api_checks(chosen)

    def _checked_as_the_api_checks(self, chosen: str) -> bool:
        """Load the answers through the API's own request schema: the form refuses exactly
        what the API refuses (NUL characters, lengths, choices, list sizes), one set of rules."""
        for name in ("email", *self.USED_BY_TYPE[chosen]):
            field = getattr(self, name)
            if name != "pictures" and not clean_text(field.data):
                label = field.label.text.removesuffix(" (optional)")
                field.errors = [*field.errors, self.UNSTORABLE.format(label=label)]
                return False
        try:
            RequestIn().load({"type": chosen, "email": self.email.data, **self.details()})
        except ValidationError as exc:
            for name, messages in flatten(exc.messages).items():
                field = getattr(self, self.FORM_NAME.get(name, name.split(".")[0]), None)
                if field is None:
                    field = self.type
                field.errors = [*field.errors, *(m[:1].upper() + m[1:] for m in messages)]
            return False
        return True

    def uploads(self) -> list[tuple[str, bytes]]:
        """The files actually chosen (a form sent with none has one empty part), read once."""
        if not hasattr(self, "_uploads"):
            self._uploads, self._nameless = [], False
            for f in self.pictures.data or []:
                if getattr(f, "filename", None):
                    self._uploads.append((f.filename, f.read()))
                elif hasattr(f, "read") and f.read(1):
                    # Content with no file name: refused with a message, never dropped.
                    self._nameless = True
        return self._uploads

    def details(self) -> dict:
        """The type-specific answers, in the API's field names."""
        out = {}
        for name in self.USED_BY_TYPE.get(self.type.data, ()):
            value = getattr(self, name).data
            if not value or name == "pictures":  # files are evidence, not details
                continue
            if name == "records":
                value = [v.strip() for v in value.split(",") if v.strip()]
            if name == "reason" and self.type.data == "objection":
                out["grounds_text"] = value
                continue
            out[name] = value
        return out


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: confirm, continue, withdraw, send link."""


class RecordKeyForm(FlaskForm):
    record_key = StringField(
        "Your record key",
        description="The key from your deletion receipt or the email we sent when we erased "
        "your data, e.g. ABCD-EFGH-… (dashes and spaces do not matter).",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[InputRequired("Enter your record key."), Length(max=100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class AnswerForm(FlaskForm):
    """The subject's answer to an officer's question about their request."""

    answer = TextAreaField(
        "Your answer",
        validators=[InputRequired(message="Write your answer."), Length(max=4000)],
    )
