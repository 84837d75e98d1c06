"""Filing a request, and the emailed links that confirm it (or resume it): confirmed by a
POST from the page the link opens, since mail scanners follow links.

A request is made on the short form of its right, ``/requests/new/<right>`` (one form class per
right: :data:`web.public.forms.FORMS`); ``/requests/new`` asks which right first. A correction's
pictures are checked when its form is first sent and then held, listed with a way to take each
out, until the person sends the request (:func:`rights.lifecycle.evidence.hold`): nothing is
filed, and nothing they chose is lost, before they press "Send request" on a page that shows
everything that will go.
"""

import base64
import time
from dataclasses import dataclass, field

from flask import abort, current_app, redirect, render_template, session, url_for
from flask import request as http
from flask_babel import gettext as _
from flask_babel import ngettext

from rights.errors import InvalidTransition, RightsError, TokenInvalid
from rights.lifecycle import evidence, requests, verification
from storage.db import unit_of_work
from web.actions import attempt
from web.extensions import limiter
from web.public import bp, grant, limit
from web.public.forms import (
    ANSWER_NAMES,
    FORMS,
    RIGHT_OF_SLUG,
    RIGHTS,
    SLUGS,
    ChooseForm,
    EmptyForm,
    RightForm,
    answer_label,
)

# One budget for every door a request comes in by (the chooser, each right's form, and posts
# of the old one-form-for-all page): seven forms are not seven times the posts.
request_forms_limit = limiter.shared_limit(limit, scope="request-forms", methods=["POST"])


@bp.context_processor
def _right_forms() -> dict:
    """``right_form_url(key)``: the address of a right's own form, for the pages that list
    the rights (the start page, the chooser)."""
    return {"right_form_url": lambda key: url_for("public.request_form", slug=SLUGS[key])}


@bp.route("/requests/new", methods=["GET", "POST"])
@request_forms_limit
def new_request():
    """Which right? Answered by a link to its form (``?type=`` from older links and pages
    redirects there), or by this page's own choice."""
    if http.method == "GET" and http.args.get("type") in FORMS:
        return redirect(url_for("public.request_form", slug=SLUGS[http.args["type"]]))
    if http.method == "POST" and http.form.get("type") in FORMS and "choose" not in http.form:
        # A page of the old one-form-for-all, still open in someone's browser: filed as it
        # was meant, through the right's own form and rules.
        return _right_page(http.form["type"], earlier_page=True)
    form = ChooseForm()
    if form.validate_on_submit():
        return redirect(url_for("public.request_form", slug=SLUGS[form.type.data]), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("public/new_request.html", form=form, rights=RIGHTS), status


@bp.route("/requests/new/<slug>", methods=["GET", "POST"])
@request_forms_limit
def request_form(slug: str):
    if slug not in RIGHT_OF_SLUG:
        abort(404)
    return _right_page(RIGHT_OF_SLUG[slug])


class _Holding:
    """This browser's held pictures: the session keeps their key and list, the files are
    sealed with that key (:mod:`rights.lifecycle.evidence`). Expired ones are let go."""

    SESSION_KEY = "held_pictures"

    def __init__(self):
        saved = session.get(self.SESSION_KEY) or {}
        self._key = base64.b64decode(saved["key"]) if saved.get("key") else None
        items = [evidence.Held.from_dict(d) for d in saved.get("items", [])]
        self.items = [h for h in items if h is not None and not h.expired()]
        if len(self.items) != len(saved.get("items", [])):
            evidence.let_go([h for h in items if h is not None and h.expired()])
            self._save()

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = evidence.holding_key()
        return self._key

    def add(self, name: str, picture: evidence.Picture) -> evidence.Held:
        held = evidence.hold(self.key, name, picture)
        self.items.append(held)
        self._save()
        return held

    def pictures(self, held: list[evidence.Held]) -> list[evidence.Picture] | None:
        """The pictures of ``held`` as checked, or None if any can no longer be read."""
        out = [evidence.held_picture(self.key, h) for h in held]
        return None if any(p is None for p in out) else out

    def preview(self, held: evidence.Held) -> str | None:
        data = evidence.held_preview(self.key, held)
        return f"data:image/png;base64,{base64.b64encode(data).decode()}" if data else None

    def keep_only(self, held: list[evidence.Held]) -> None:
        """Let go of every held picture but ``held``."""
        ids = {h.id for h in held}
        evidence.let_go([h for h in self.items if h.id not in ids])
        self.items = [h for h in self.items if h.id in ids]
        self._save()

    def clear(self) -> None:
        evidence.let_go(self.items)
        self.items = []
        self._save()

    def _save(self) -> None:
        if self.items:
            session[self.SESSION_KEY] = {
                "key": base64.b64encode(self.key).decode(),
                "items": [h.as_dict() for h in self.items],
            }
        else:
            session.pop(self.SESSION_KEY, None)


def _right_page(key: str, *, earlier_page: bool = False):
    """A right's form: shown, checked, and — once everything in it passes — the request filed.

    With pictures (a correction), a send that brings pictures which pass the checks holds
    them and shows the form again, every answer kept and the pictures listed, each with a box
    to take it out: the request is filed by the next "Send request". ``earlier_page``: a post
    of the old one-form-for-all page, whose sender never sees a list; its pictures go with the
    request at once, as that page said they would."""
    form = FORMS[key]()
    holding = _Holding() if "pictures" in form else None
    if not form.is_submitted():
        return _render(form, holding, _Pictures(listed=list(holding.items) if holding else []))
    ok = form.validate_on_submit()
    foreign = _foreign_answers(form) if earlier_page else []
    pictures = _take_pictures(form, holding, earlier_page) if holding else _Pictures()
    if ok and not foreign and not pictures.review and not _has_errors(form):
        sending = holding.pictures(pictures.sending) if holding else []
        if sending is not None:
            _file(form, [*sending, *pictures.sent_now])
            if holding:
                holding.clear()
            return redirect(url_for("public.request_sent"), code=303)
        form.pictures.errors = [
            _("We could not read back a picture you chose over an hour ago: choose it again.")
        ]
        pictures.listed = [h for h in pictures.listed if holding.pictures([h])]
    status = 422 if foreign or _has_errors(form) else 200
    return _render(form, holding, pictures, foreign=foreign, status=status)


@dataclass
class _Pictures:
    """What a send of the form did with pictures: the held ones listed on the page again,
    those ticked to be taken out, and whether new ones were just held (``review``), were
    refused (``refused``: choose them again) or go at once (``sent_now``: an old page's)."""

    listed: list = field(default_factory=list)
    removing: set = field(default_factory=set)
    review: bool = False
    refused: bool = False
    sent_now: list = field(default_factory=list)

    @property
    def sending(self) -> list:
        return [h for h in self.listed if h.id not in self.removing]


def _take_pictures(form: RightForm, holding: _Holding, earlier_page: bool) -> _Pictures:
    """The page lists the held pictures it showed (``held``) and those ticked to be taken
    out (``remove``); a box ticked is only a wish until the request is sent, so the pictures
    stay held (and ticked) while anything else on the form needs fixing."""
    held = {h.id: h for h in holding.items}
    shown = list(dict.fromkeys(http.form.getlist("held")))
    out = _Pictures(listed=[held[i] for i in shown if i in held])
    out.removing = set(http.form.getlist("remove")) & {h.id for h in out.listed}
    holding.keep_only(out.listed)  # the page sent is what the person sees: no others linger
    if any(i not in held for i in shown):
        form.pictures.errors = [
            *form.pictures.errors,
            _(
                "We let go of a picture you chose over an hour ago: choose it again if you "
                "still want to send it."
            ),
        ]
    uploads = form.uploads()
    if form.nameless():
        out.refused = True  # the form said why; nothing of this send is held
    elif uploads and (
        len(out.sending) + len(uploads) > evidence.MAX_FILES
        # Ticked to be taken out, but held until sent: a bound on those too.
        or len(out.listed) + len(uploads) > 2 * evidence.MAX_FILES
    ):
        form.pictures.errors = [
            *form.pictures.errors,
            ngettext(
                "Send at most %(num)d picture: take some out, or choose fewer.",
                "Send at most %(num)d pictures: take some out, or choose fewer.",
                evidence.MAX_FILES,
            ),
        ]
        out.refused = True
    elif uploads:
        try:
            checked = evidence.check_pictures(uploads)
        except RightsError as exc:
            form.pictures.errors = [*form.pictures.errors, *exc.fields["pictures"]]
            out.refused = True
        else:
            if earlier_page:
                out.sent_now = checked
            else:
                names = [name for name, _ in uploads]
                out.listed += [holding.add(n, p) for n, p in zip(names, checked, strict=True)]
                out.review = True
    return out


def _has_errors(form: RightForm) -> bool:
    return any(f.errors for f in form)


def _foreign_answers(form: RightForm) -> list[str]:
    """Answers to another right's questions posted with this one's (an old page's): said,
    never silently dropped."""
    mine = {f.name for f in form}
    given = [
        name
        for name in sorted(ANSWER_NAMES - mine)
        if any(v.strip() for v in http.form.getlist(name))
        or any(f.filename for f in http.files.getlist(name))
    ]
    return [
        _(
            "Not used for the right you chose: “%(label)s”. It was left out: check "
            "your answers and send the form again.",
            label=answer_label(name),
        )
        for name in given
    ]


def _render(form: RightForm, holding, pictures: _Pictures, *, foreign=(), status=200):
    return render_template(
        f"public/request_form_{form.type}.html",
        form=form,
        slug=SLUGS[form.type],
        intro=next(text for k, _, text in RIGHTS if k == form.type),
        pictures=[
            {"held": h, "preview": holding.preview(h), "removing": h.id in pictures.removing}
            for h in pictures.listed
        ],
        failed=status == 422,
        review=pictures.review and status != 422,
        refused=pictures.refused,
        foreign=foreign,
    ), status


def _file(form: RightForm, pictures: list[evidence.Picture]) -> None:
    started = time.monotonic()
    # Committed here rather than after the view: the floor below sleeps, and an open
    # write transaction would hold SQLite's write lock through it, queuing every other
    # post behind this one.
    with unit_of_work():
        req = requests.file(
            type=form.type,
            email=form.email.data,
            details=form.details(),
            channel="web",
            actor="subject",
        )
        evidence.attach(req, pictures)
    # Filing for an address Lethe has never seen does a little more work (a new subject
    # and key) than for a known one; answer no sooner than a fixed floor so that timing
    # does not tell the two apart.
    floor = current_app.config["PUBLIC_FORM_MIN_SECONDS"]
    time.sleep(max(0.0, floor - (time.monotonic() - started)))


@bp.get("/requests/sent")
def request_sent():
    # The same page whether or not the address belongs to a member.
    return render_template("public/sent.html")


def _token_page(token: str, purpose: str, template: str):
    form = EmptyForm()
    try:
        req = verification.peek(token, purpose)
    except TokenInvalid:
        return _link_invalid(token)
    return render_template(template, form=form, token=token, req=req)


def _link_invalid(token: str):
    """The one page for a link that is unknown, used, expired or no longer applies; for a
    link Lethe issued, with a button that emails a fresh one for its request."""
    return render_template(
        "public/link_invalid.html", reference=verification.reference_of(token), form=EmptyForm()
    ), 400


@bp.get("/verify/<token>")
def verify(token: str):
    return _token_page(token, "verify", "public/verify.html")


@bp.post("/verify/<token>")
@limiter.limit(limit)
def verify_confirm(token: str):
    return _confirm(token, lambda: requests.confirm(token), (TokenInvalid, InvalidTransition))


@bp.get("/resume/<token>")
def resume(token: str):
    return _token_page(token, "resume", "public/resume.html")


@bp.post("/resume/<token>")
@limiter.limit(limit)
def resume_confirm(token: str):
    return _confirm(token, lambda: requests.resume(token), TokenInvalid)


def _confirm(token: str, spend, refusals):
    """Spend a link (``spend``): this browser may then see the request. A link that is
    unknown, used, expired or no longer applies gets the same page, and nothing is kept."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    spent = attempt(spend, catch=refusals)
    if not spent:
        return _link_invalid(token)
    grant(spent.value.id)
    return redirect(url_for("public.request_status", reference=spent.value.reference), code=303)
