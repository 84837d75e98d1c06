"""Forms of the public pages (Flask-WTF: CSRF on every form).

A request is made on the form of its right (``FORMS``, one class each): a short form that asks
only what that right needs, in the order a person thinks of it — their address first, then
what the right is about, then anything else they want to say. What a form refuses, the API
refuses too: each form's answers are loaded through the API's own schema before anything is
filed (one set of rules, two doors).
"""

import re
from typing import ClassVar

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from marshmallow import ValidationError
from wtforms import (
    EmailField,
    Field,
    MultipleFileField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, Email, InputRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError

from rights.contest.rectification import PROFILE_LABELS
from storage import wording
from storage.wording import N_
from web.api.errors import flatten
from web.api.schemas import RequestIn
from web.validation import clean_text

RIGHTS = [
    (
        "access",
        _l("See my data"),
        _l(
            "Get a copy of everything the platform holds about you, where "
            "each record came from, who it was shared with and how long it is kept."
        ),
    ),
    (
        "portability",
        _l("Take my data elsewhere"),
        _l(
            "Download the data you gave the platform, as "
            "JSON or spreadsheet (CSV) files, to move it to another service."
        ),
    ),
    (
        "rectification",
        _l("Correct my data"),
        _l(
            "Tell us which records are wrong and what is right, "
            "for example an award that says you received a perk you never got."
        ),
    ),
    (
        "erasure",
        _l("Delete my data"),
        _l(
            "Have your data erased and your account closed. Some records "
            "may have to be kept by law; we tell you which, why and until when."
        ),
    ),
    (
        "restriction",
        _l("Pause the use of my data"),
        _l("Have records kept but not used while their accuracy or our reasons are checked."),
    ),
    (
        "objection",
        _l("Object to a use of my data"),
        _l("Stop marketing, the use of your name or face in promotions, or the influence scoring."),
    ),
    (
        "consent_withdrawal",
        _l("Withdraw my consent"),
        _l("Take back a consent you gave, as easily as you gave it."),
    ),
]
# The rights' titles and descriptions are lazy: said in the reader's language wherever they are
# shown (the start page, the chooser, each form's heading).
RIGHT_KEYS = [r[0] for r in RIGHTS]
TITLES = {key: title for key, title, _ in RIGHTS}
# Each right's form is at /requests/new/<slug>: words a person reads in the address bar.
SLUGS = {
    "access": "access",
    "portability": "portability",
    "rectification": "correction",
    "erasure": "erasure",
    "restriction": "restriction",
    "objection": "objection",
    "consent_withdrawal": "consent-withdrawal",
}
RIGHT_OF_SLUG = {slug: key for key, slug in SLUGS.items()}


def options(*pairs: tuple[str, str]) -> list[SelectChoice]:
    """Select options led by an empty one, so an optional choice can always be undone."""
    return [SelectChoice("", "— choose —"), *(SelectChoice(v, label) for v, label in pairs)]


# WTForms' own messages, given here in our words (English as WTForms says them), so that a form
# in another language says them in that language too.
TOO_LONG = _l("Field cannot be longer than %(max)d characters.")
NOT_A_CHOICE = _l("'%(value)s' is not a valid choice for this field.")


def _at_most(n: int) -> Length:
    return Length(max=n, message=TOO_LONG)


def _choices_only(form, field) -> None:
    """Only the choices offered (WTForms' own check, with a message of ours)."""
    offered = {value for value, *_ in field.iter_choices()}
    for value in field.data or []:
        if value not in offered:
            raise FieldError(NOT_A_CHOICE % {"value": value})


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _one_of(pairs: tuple[tuple[str, str], ...], required: str) -> dict:
    """Radio buttons for a choice a right cannot do without: nothing is chosen beforehand,
    and a choice is changed by choosing another (the form's "choose another right" link
    leaves it altogether)."""
    return dict(
        choices=[SelectChoice(v, label) for v, label in pairs],
        validate_choice=False,  # checked below, with one message rather than two
        validators=[
            InputRequired(required),
            AnyOf([v for v, _ in pairs], message=_l("Choose one of the answers given.")),
        ],
    )


def _email() -> EmailField:
    return EmailField(
        _l("Your email address"),
        filters=[_strip],
        render_kw={"autocomplete": "email"},
        description=_l(
            "The address you use on the platform. We send a link to it to confirm it is you."
        ),
        validators=[
            InputRequired(_l("Enter your email address.")),
            Email(_l("Enter an email address like name@example.com.")),
            _at_most(254),
        ],
    )


def _note(label=None, hint=None) -> Field:
    return TextAreaField(
        label or _l("Anything else you want us to know (optional)"),
        description=hint,
        validators=[Optional(), _at_most(2000)],
    )


# The person's details, as the records question names them: "Your email address" is the
# question the form opens with, so the detail is named apart from it.
DETAILS_IN_WORDS = {
    "name": _l("Your name"),
    "handle": _l("Your social media handle"),
    "address": _l("Your postal address"),
    "email": _l("The email address on your account"),
}


def _profile() -> SelectMultipleField:
    return SelectMultipleField(
        _l("Your details"),
        choices=[
            SelectChoice(key, DETAILS_IN_WORDS.get(key, label))
            for key, label in PROFILE_LABELS.items()
        ],
        validate_choice=False,  # checked by _choices_only, in the form's language
        validators=[Optional(), _choices_only],
    )


def _references() -> StringField:
    return StringField(
        _l("Awards, list entries or promotions (optional)"),
        filters=[_strip],
        description=_l(
            "Each has a reference in your data report, like aw-0001-nova. Separate "
            "several with commas. Not sure? Leave this empty: once you have confirmed your "
            "email, your request's page lists your records for you to tick."
        ),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
        validators=[Optional(), _at_most(2000)],
    )


# What the API's schema says when it refuses an answer the form let through (rare: the form
# checks the same first), in words the catalogue has; any other is said in general words in a
# language other than English.
API_MESSAGES = (
    N_("Not a valid email address."),
    N_("Longer than maximum length 120."),
    N_("Longer than maximum length 500."),
)


def _api_message(message: str) -> str:
    said = message[:1].upper() + message[1:]
    if wording.current_language() == wording.DEFAULT_LANGUAGE:
        return said
    translated = gettext(said)
    if translated != said:
        return translated
    return gettext("We cannot accept this answer as it is: check it and send the form again.")


class RightForm(FlaskForm):
    """The form of one right. Subclasses declare the right's fields, in the order they are
    shown, and the right they file (``type``)."""

    type: ClassVar[str]
    # The API's names for the answers the form names otherwise (form name -> API name).
    API_NAMES: ClassVar[dict[str, str]] = {}
    UNSTORABLE = N_(
        "Your answer to “%(label)s” holds a character we cannot store (an invisible control "
        "character): delete it and type the text again."
    )

    email = _email()

    @property
    def title(self) -> str:
        return TITLES[self.type]

    def answers(self) -> list[Field]:
        """The fields that carry answers (not the CSRF token), in the order shown."""
        return [f for f in self if f.name != "csrf_token"]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if "pictures" in self and self.nameless():
            self.pictures.errors = [
                *self.pictures.errors,
                gettext(
                    "A file arrived without its name, so we could not check it: choose it again."
                ),
            ]
            ok = False
        return ok and self._checked_as_the_api_checks()

    def _checked_as_the_api_checks(self) -> bool:
        """Load the answers through the API's own request schema: the form refuses exactly
        what the API refuses (NUL characters, lengths, choices, list sizes), one set of rules."""
        for field in self.answers():
            if field.type != "MultipleFileField" and not clean_text(field.data):
                label = str(field.label.text).removesuffix(" (optional)")
                field.errors = [*field.errors, gettext(self.UNSTORABLE, label=label)]
                return False
        try:
            RequestIn().load({"type": self.type, "email": self.email.data, **self.details()})
        except ValidationError as exc:
            form_name = {api: name for name, api in self.API_NAMES.items()}
            for name, messages in flatten(exc.messages).items():
                name = form_name.get(name.split(".")[0], name.split(".")[0])
                field = self[name] if name in self else self.email
                field.errors = [*field.errors, *(_api_message(m) for m in messages)]
            return False
        return True

    def details(self) -> dict:
        """The right's answers, in the API's field names; empty ones left out. The records a
        person names come from two fields (their details ticked in words, the others by
        reference) and go as one list, as the API takes them."""
        out = {}
        for field in self.answers():
            if field.name in ("email", "pictures", "profile", "records") or not field.data:
                continue
            out[self.API_NAMES.get(field.name, field.name)] = field.data
        if "records" in self and (named := self.named_records()):
            out["records"] = named
        return out

    def named_records(self) -> list[str]:
        """The records ticked in words ("profile.name": the data map's name for a person's
        name) and those given by reference, separated by commas or spaces."""
        ticked = [f"profile.{key}" for key in self.profile.data or []] if "profile" in self else []
        typed = [v for v in re.split(r"[,\s]+", self.records.data or "") if v]
        return list(dict.fromkeys([*ticked, *typed]))

    def uploads(self) -> list[tuple[str, bytes]]:
        """The files actually chosen (a form sent with none has one empty part), read once."""
        if not hasattr(self, "_uploads"):
            self._uploads, self._nameless = [], False
            chosen = (self.pictures.data or []) if "pictures" in self else []
            for f in chosen:
                if getattr(f, "filename", None):
                    self._uploads.append((f.filename, f.read()))
                elif hasattr(f, "read") and f.read(1):
                    # Content with no file name: refused with a message, never dropped.
                    self._nameless = True
        return self._uploads

    def nameless(self) -> bool:
        self.uploads()
        return self._nameless


class AccessForm(RightForm):
    type = "access"
    reason = _note(hint=_l("For example, if you are looking for something in particular."))


class PortabilityForm(RightForm):
    type = "portability"
    reason = _note(hint=_l("For example, which service you are moving your data to."))


class CorrectionForm(RightForm):
    type = "rectification"
    # Required: a correction says what is wrong and what is right (the API requires it too).
    correction = TextAreaField(
        _l("What is wrong, and what is right?"),
        description=_l("For example: “The award says I received a Nova X1 phone. I never got it.”"),
        validators=[InputRequired(_l("Say what is wrong, and what is right.")), _at_most(5000)],
    )
    profile = _profile()
    records = _references()
    statement = TextAreaField(
        _l("A statement to add to your records (optional)"),
        description=_l(
            "Your own words, kept with the records you name for as long as we keep them."
        ),
        validators=[Optional(), _at_most(5000)],
    )
    pictures = MultipleFileField(
        _l("Pictures that show what is right (optional)"),
        description=_l(
            "Up to 3 JPEG, PNG or WebP pictures of at most 4 MB each, for example a "
            "screenshot or a photo of a delivery note. We keep only the picture itself: its "
            "location, camera and other hidden details are removed."
        ),
        render_kw={"accept": "image/jpeg,image/png,image/webp"},
    )
    reason = _note()


class ErasureForm(RightForm):
    type = "erasure"
    reason = _note(hint=_l("For example, why you are leaving. You do not have to say."))


GROUNDS = (
    ("accuracy_contested", _l("The data is wrong")),
    ("unlawful_processing", _l("The use is unlawful, but I want the data kept")),
    ("legal_claims", _l("I need the data kept for a legal claim")),
    ("objection_pending", _l("I have objected, and want a pause meanwhile")),
)


class RestrictionForm(RightForm):
    type = "restriction"
    grounds = RadioField(
        _l("Why should we pause the use of your data?"),
        **_one_of(GROUNDS, _l("Choose why we should pause the use of your data.")),
    )
    profile = _profile()
    records = _references()
    correction = TextAreaField(
        _l("What is wrong, and what is right? (optional)"),
        description=_l("If you say the data is wrong: what it should say."),
        validators=[Optional(), _at_most(5000)],
    )
    reason = _note()


PURPOSES = (
    ("direct_marketing", _l("Marketing emails and offers")),
    ("likeness", _l("Use of my name or face in promotions")),
    ("profiling", _l("Influence scoring (profiling)")),
    ("legitimate_interests", _l("Another use based on our legitimate interests")),
)


class ObjectionForm(RightForm):
    type = "objection"
    API_NAMES: ClassVar[dict[str, str]] = {"reason": "grounds_text"}
    purpose = RadioField(
        _l("What do you object to?"), **_one_of(PURPOSES, _l("Choose what you object to."))
    )
    reason = _note(
        _l("Why do you object? (optional)"),
        _l(
            "For marketing you need not say why: we stop. For the other uses, your reasons "
            "help us weigh them against ours."
        ),
    )


CONSENTS = (
    ("name_and_likeness", _l("Use of my name and face in promotions")),
    ("email_marketing", _l("Marketing emails")),
)


class ConsentWithdrawalForm(RightForm):
    type = "consent_withdrawal"
    consent_purpose = RadioField(
        _l("Which consent do you take back?"),
        **_one_of(CONSENTS, _l("Choose the consent you take back.")),
    )
    reason = _note()


# One form per right, by the right's key (the request type it files).
FORMS: dict[str, type[RightForm]] = {
    form.type: form
    for form in (
        AccessForm,
        PortabilityForm,
        CorrectionForm,
        ErasureForm,
        RestrictionForm,
        ObjectionForm,
        ConsentWithdrawalForm,
    )
}
# Every answer any right's form asks for: an answer to another right's question, posted to
# the form of one right (a page of the old one-form-for-all), is pointed out, never dropped.
ANSWER_NAMES = frozenset(
    name
    for form in FORMS.values()
    for name, unbound in vars(form).items()
    if hasattr(unbound, "field_class")
) | {"email"}


def answer_label(name: str) -> str:
    """How the forms label the answer ``name`` (the first form that asks it)."""
    for form in FORMS.values():
        unbound = getattr(form, name, None)
        if hasattr(unbound, "field_class"):
            label = unbound.args[0] if unbound.args else unbound.kwargs["label"]
            return str(label).removesuffix(" (optional)")
    return name


class ChooseForm(FlaskForm):
    """/requests/new: which right, before its own form."""

    type = RadioField(
        _l("What would you like to do?"),
        choices=[SelectChoice(key, title) for key, title, _ in RIGHTS],
        validate_choice=False,
        validators=[
            InputRequired(_l("Choose what you would like to do.")),
            AnyOf(RIGHT_KEYS, message=_l("Choose what you would like to do.")),
        ],
    )


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: confirm, continue, withdraw, send link."""


class RecordKeyForm(FlaskForm):
    record_key = StringField(
        _l("Your record key"),
        description=_l(
            "The key from your deletion receipt or the email we sent when we erased "
            "your data, e.g. ABCD-EFGH-… (dashes and spaces do not matter)."
        ),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[InputRequired(_l("Enter your record key.")), _at_most(100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class AnswerForm(FlaskForm):
    """The subject's answer to an officer's question about their request."""

    answer = TextAreaField(
        _l("Your answer"),
        validators=[InputRequired(message=_l("Write your answer.")), _at_most(4000)],
    )
