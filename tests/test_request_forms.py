"""Issue 16: a start page with the seven rights, each with its own short form that asks only
what that right needs; a correction's pictures listed, each with a way to take it out, before
anything is sent; withdrawing asks first; a request asked again is answered with the first."""

import io
import os
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from PIL import Image
from sqlalchemy import func, select

from rights import jobs
from rights.lifecycle import evidence, requests
from storage.db import db
from storage.models import AuditEvent, EvidenceAttachment, RequestEvent, RightsRequest
from tests import factories
from tests.helpers import deliver
from web.api.schemas import TYPE_FIELDS
from web.public.forms import FORMS, RIGHTS, SLUGS

# What each right's form asks, and nothing else (besides the CSRF token).
ASKS = {
    "access": {"email", "reason"},
    "portability": {"email", "reason"},
    "erasure": {"email", "reason"},
    "rectification": {
        "email",
        "correction",
        "profile",
        "records",
        "statement",
        "pictures",
        "reason",
    },
    "restriction": {"email", "grounds", "profile", "records", "correction", "reason"},
    "objection": {"email", "purpose", "reason"},
    "consent_withdrawal": {"email", "consent_purpose", "reason"},
}
# Words the old one-form-for-all used that a person should never have had to read.
JARGON = ("leave empty otherwise", "profile.", "— choose —", "leave on", "Only for ")


class _Page(HTMLParser):
    """The form controls of a page, and the text of each control's label or legend."""

    def __init__(self, html: str):
        super().__init__()
        self.names: set[str] = set()
        self.labels: dict[str, str] = {}  # id -> label text
        self.legends: list[str] = []
        self.ids: dict[str, str] = {}  # id -> name
        self._in: tuple[str, str] | None = None
        self._text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "textarea", "select") and attrs.get("name"):
            if attrs.get("type") != "hidden":
                self.names.add(attrs["name"])
            if attrs.get("id"):
                self.ids[attrs["id"]] = attrs["name"]
        if tag == "label" and attrs.get("for"):
            self._in, self._text = ("label", attrs["for"]), ""
        if tag == "legend":
            self._in, self._text = ("legend", ""), ""

    def handle_data(self, data):
        if self._in:
            self._text += data

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            text = " ".join(self._text.split())
            if tag == "label":
                self.labels[self._in[1]] = text
            else:
                self.legends.append(text)
            self._in = None


def _count(app, model=RightsRequest) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _png(colour=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return out.getvalue()


def _jpeg_with_location() -> bytes:
    out = io.BytesIO()
    tags = Image.Exif()
    tags[0x010F] = "SnoopCam"
    tags[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG", exif=tags.tobytes())
    return out.getvalue()


CORRECTION = {"email": "person1@example.org", "correction": "I never received the phone."}


def _send_correction(client, files=(), **extra):
    data = {**CORRECTION, **extra}
    if files:
        data["pictures"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/requests/new/correction", data=data, content_type="multipart/form-data")


def _held_ids(page: str) -> list[str]:
    return re.findall(r'name="held" value="([^"]+)"', page)


# --- each right's own short form ---------------------------------------------------------------


@pytest.mark.parametrize(("right", "asks"), sorted(ASKS.items()))
def test_each_rights_form_asks_only_what_that_right_needs(client, right, asks):
    resp = client.get(f"/requests/new/{SLUGS[right]}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    page = _Page(html)
    assert page.names - {"csrf_token"} == asks
    for words in JARGON:
        assert words not in html, words
    title = dict((k, t) for k, t, _ in RIGHTS)[right]
    assert f"<h1>{title}</h1>" in html and f"<title>{title} · " in html
    # The way back from any choice made here: the chooser, one link away.
    assert 'href="/requests/new">Choose another right</a>' in html


@pytest.mark.parametrize("right", sorted(ASKS))
def test_optional_answers_say_so_and_required_ones_do_not(client, right):
    """A field is marked "(optional)" exactly when the form (and the API behind it) can do
    without it: the correction is required for a correction, optional for a pause."""
    form_class = FORMS[right]
    page = _Page(client.get(f"/requests/new/{SLUGS[right]}").get_data(as_text=True))
    label_of = {name: page.labels[i] for i, name in page.ids.items() if i in page.labels}
    required_in_api = {
        form_class.API_NAMES.get(n, n) for n, req in TYPE_FIELDS[right].items() if req
    }
    for name in ASKS[right] - {"profile"}:
        if name in ("grounds", "purpose", "consent_purpose"):
            text = next(t for t in page.legends if not t.startswith("Which records"))
        else:
            text = label_of[name]
        optional = name not in {"email", *required_in_api}
        assert text.endswith("(optional)") == optional, (right, name, text)
    if "profile" in ASKS[right]:  # the records question, ticked in words or typed by reference
        records = [t for t in page.legends if t.startswith("Which records")]
        assert records and records[0].endswith("(optional)")
        assert {page.labels[i] for i, n in page.ids.items() if n == "profile"} == {
            "Your name",
            "Your social media handle",
            "Your postal address",
            "The email address on your account",
        }


def test_correction_is_required_for_a_correction_and_optional_for_a_pause(app, client):
    assert TYPE_FIELDS["rectification"]["correction"] is True
    assert TYPE_FIELDS["restriction"]["correction"] is False
    resp = client.post("/requests/new/correction", data={"email": "a@example.org"})
    assert resp.status_code == 422
    assert "Say what is wrong, and what is right." in resp.get_data(as_text=True)
    resp = client.post(
        "/requests/new/restriction", data={"email": "a@example.org", "grounds": "legal_claims"}
    )
    assert resp.status_code == 303


def test_records_are_named_in_words_or_by_reference(app, client):
    resp = _send_correction(client, profile=["name", "address"], records="aw-1, dl-1 aw-1")
    assert resp.status_code == 303
    with app.app_context():
        req = db.session.execute(select(RightsRequest)).scalar_one()
        assert requests.details(req)["records"] == [
            "profile.name",
            "profile.address",
            "aw-1",
            "dl-1",
        ]


def test_start_page_and_chooser_link_each_right_to_its_own_form(client):
    for path in ("/", "/requests/new"):
        page = client.get(path).get_data(as_text=True)
        for key, title, _ in RIGHTS:
            if path == "/":
                assert f'<a href="/requests/new/{SLUGS[key]}">{title}</a>' in page
            else:  # the chooser: one question, nothing chosen beforehand
                assert f'value="{key}"' in page and f'value="{key}" checked' not in page
    chosen = client.post("/requests/new", data={"choose": "1", "type": "objection"})
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/requests/new/objection"


@pytest.mark.parametrize(("right", "slug"), sorted(SLUGS.items()))
def test_type_in_the_query_redirects_to_the_rights_form(client, right, slug):
    resp = client.get(f"/requests/new?type={right}")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/requests/new/{slug}"
    assert client.get(resp.headers["Location"]).status_code == 200


def test_unknown_right_is_not_found(client):
    assert client.get("/requests/new/everything").status_code == 404
    assert (
        client.post("/requests/new/everything", data={"email": "a@example.org"}).status_code == 404
    )


# --- errors: the title says so, the summary is focused and links each field ------------------


def test_error_title_and_summary(app, client):
    resp = client.post("/requests/new/restriction", data={"email": "nope", "correction": "x"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert re.search(r"<title>Error: Pause the use of my data · ", html)
    summary = re.search(r'<div class="error-summary"([^>]*)>(.*?)</div>', html, re.S)
    assert summary, html
    attrs, inside = summary.groups()
    assert 'tabindex="-1"' in attrs and "autofocus" in attrs and 'role="alert"' in attrs
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', inside)
    # In the order of the page, each to a control that is on it.
    assert [target for target, _ in links] == ["email", "grounds-0"]
    assert "Enter an email address like" in links[0][1]
    assert links[1][1] == "Choose why we should pause the use of your data."
    for target, _ in links:
        assert f'id="{target}"' in html
    assert 'id="email" ' in html and 'aria-invalid="true"' in html
    assert re.search(r">\s*x</textarea>", html)  # what was typed is kept
    assert _count(app) == 0
    ok = client.get("/requests/new/restriction").get_data(as_text=True)
    assert "<title>Pause the use of my data · " in ok and "error-summary" not in ok


# --- pictures: listed with a way to take each out, before anything is sent ---------------------


def test_pictures_are_held_and_listed_before_the_request_is_sent(app, client):
    original = _jpeg_with_location()
    resp = _send_correction(client, [("IMG_0042.jpg", original), ("box.png", _png())])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    assert "Check your request before sending" in html
    assert "<title>Check before sending: Correct my data" in html
    assert _count(app) == 0 and _count(app, EvidenceAttachment) == 0  # nothing sent yet
    held = _held_ids(html)
    assert len(held) == 2
    for n, name in enumerate(("IMG_0042.jpg", "box.png"), start=1):
        assert f'<label for="remove-{n}">Take out {name}</label>' in html
        assert f'id="remove-{n}"' in html
    assert html.count('src="data:image/png;base64,') == 2  # a preview of each
    # Everything typed is still there, and can still be changed.
    assert "I never received the phone." in html and 'value="person1@example.org"' in html
    # Held sealed: no picture, no camera or position, in the files; the key is the browser's.
    with app.test_request_context():
        folder = evidence.held_folder()
    files = sorted(os.listdir(folder))
    assert len(files) == 4  # a picture and its preview, twice
    for name in files:
        content = (folder / name).read_bytes()
        assert b"SnoopCam" not in content and b"\x89PNG" not in content and b"JFIF" not in content
        assert oct((folder / name).stat().st_mode & 0o777) == "0o600"

    # Take the first one out, and send.
    resp = _send_correction(client, held=held, remove=[held[0]])
    assert resp.status_code == 303, resp.get_data(as_text=True)
    with app.app_context():
        items = db.session.execute(select(EvidenceAttachment)).scalars().all()
        assert [i.media_type for i in items] == ["image/png"]
    assert os.listdir(folder) == []  # let go of, both
    with client.session_transaction() as session:
        assert "held_pictures" not in session


def test_a_ticked_box_is_undone_while_anything_else_needs_fixing(app, client):
    """Ticking "take out" is only a wish until the request is sent: with another error on
    the form, the picture stays held, still ticked, and can be unticked."""
    html = _send_correction(client, [("a.png", _png())]).get_data(as_text=True)
    held = _held_ids(html)
    resp = _send_correction(client, held=held, remove=held, email="not-an-email")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert _held_ids(html) == held
    assert f'name="remove" value="{held[0]}" id="remove-1" checked' in html
    # Unticked (the box sends nothing), and sent: the picture goes with the request.
    assert _send_correction(client, held=held).status_code == 303
    assert _count(app, EvidenceAttachment) == 1


def test_more_pictures_can_be_added_to_those_held_up_to_three(app, client):
    html = _send_correction(client, [("a.png", _png()), ("b.png", _png())]).get_data(as_text=True)
    held = _held_ids(html)
    too_many = _send_correction(client, [("c.png", _png()), ("d.png", _png())], held=held)
    assert too_many.status_code == 422
    assert "Send at most 3 pictures" in too_many.get_data(as_text=True)
    assert _held_ids(too_many.get_data(as_text=True)) == held  # still held
    # Taking one out makes room for another.
    more = _send_correction(client, [("c.png", _png())], held=held, remove=[held[0]])
    assert more.status_code == 200
    listed = _held_ids(more.get_data(as_text=True))
    assert listed[:2] == held and len(listed) == 3
    assert _send_correction(client, held=listed, remove=[held[0]]).status_code == 303
    assert _count(app, EvidenceAttachment) == 2


def test_only_the_pictures_the_page_lists_stay_held(app, client):
    """What the person sees is what is held: a send whose page did not list a held picture
    (another tab's, or a page from before) lets it go; ticked boxes are bounded too."""
    first = _held_ids(_send_correction(client, [("a.png", _png())]).get_data(as_text=True))
    html = _send_correction(client, [("b.png", _png())]).get_data(as_text=True)
    assert len(_held_ids(html)) == 1 and _held_ids(html) != first
    with app.test_request_context():
        assert len(os.listdir(evidence.held_folder())) == 2  # b.png and its preview
    # Three ticked to be taken out stay held while the form has errors, three more join
    # them; beyond that, the boxes ticked must be sent (or unticked) first.
    three = [("c.png", _png()), ("d.png", _png())]
    held = _held_ids(_send_correction(client, three, held=_held_ids(html)).get_data(as_text=True))
    assert len(held) == 3
    six = _send_correction(client, three + [("e.png", _png())], held=held, remove=held, email="x")
    held_six = _held_ids(six.get_data(as_text=True))
    assert six.status_code == 422 and len(held_six) == 6
    seven = _send_correction(client, [("f.png", _png())], held=held_six, remove=held, email="x")
    assert "Send at most 3 pictures" in seven.get_data(as_text=True)
    assert _held_ids(seven.get_data(as_text=True)) == held_six


def test_a_refused_picture_keeps_the_held_ones_and_everything_typed(app, client):
    html = _send_correction(client, [("good.png", _png())]).get_data(as_text=True)
    held = _held_ids(html)
    resp = _send_correction(client, [("x.jpg", b"not a picture")], held=held, statement="mine")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "x.jpg is not a JPEG, PNG or WebP picture we can read" in html
    assert "choose the pictures again" in html
    assert _held_ids(html) == held and "Take out good.png" in html
    assert re.search(r">\s*mine</textarea>", html)
    assert _count(app) == 0


def test_held_pictures_are_this_browsers_alone(app, client):
    html = _send_correction(client, [("a.png", _png())]).get_data(as_text=True)
    held = _held_ids(html)
    other = app.test_client()
    resp = _send_correction(other, held=held)
    assert resp.status_code == 422
    assert "We let go of a picture" in resp.get_data(as_text=True)
    assert _count(app) == 0


def test_held_pictures_last_an_hour_at_most(app, client, monkeypatch):
    html = _send_correction(client, [("a.png", _png())]).get_data(as_text=True)
    held = _held_ids(html)
    later = evidence.time.time() + evidence.HOLD_FOR.total_seconds() + 1
    monkeypatch.setattr(evidence.time, "time", lambda: later)
    resp = _send_correction(client, held=held)
    assert resp.status_code == 422
    assert "We let go of a picture you chose over an hour ago" in resp.get_data(as_text=True)
    assert _count(app) == 0
    with app.test_request_context():
        assert evidence.sweep_held() == 0  # the files went when the session's list was read
        assert os.listdir(evidence.held_folder()) == []


def test_sweep_deletes_every_holding_older_than_an_hour(app, client, monkeypatch):
    _send_correction(client, [("a.png", _png())])
    with app.test_request_context():
        folder = evidence.held_folder()
        assert len(os.listdir(folder)) == 2
        assert evidence.sweep_held() == 0
        later = evidence.time.time() + evidence.HOLD_FOR.total_seconds() + 1
        assert evidence.sweep_held(now=later) == 2
        assert os.listdir(folder) == []


def test_the_worker_sweeps_held_pictures_nobody_came_back_for(app, client, monkeypatch):
    _send_correction(client, [("a.png", _png())])  # held; the person never sends it
    later = evidence.time.time() + evidence.HOLD_FOR.total_seconds() + 1
    monkeypatch.setattr(evidence.time, "time", lambda: later)
    with app.app_context():
        counts = jobs.run_due()
        assert counts["held_pictures_swept"] == 2  # the picture and its preview
        assert os.listdir(evidence.held_folder()) == []


# --- withdrawing asks first -------------------------------------------------------------------


def _confirmed(app, client, mailbox, path: str, data: dict) -> str:
    """File on a right's form and confirm from the emailed link; returns the reference."""
    resp = client.post(path, data=data)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    deliver(app)
    link = re.search(r"http://lethe\.test(/verify/\S+)", mailbox.body(mailbox.messages[-1]))
    confirmed = client.post(link.group(1))
    assert confirmed.status_code == 303
    return confirmed.headers["Location"].rsplit("/", 1)[-1]


def test_withdraw_asks_first_then_withdraws(app, client, mailbox):
    with app.app_context():
        factories.member(1)
        factories.award(1, 1, status="received")
        db.session.commit()
    ref = _confirmed(
        app,
        client,
        mailbox,
        "/requests/new/restriction",
        {"email": "person1@example.org", "grounds": "accuracy_contested", "records": "aw-1"},
    )
    page = client.get(f"/requests/{ref}").get_data(as_text=True)
    # The request's page has no button that withdraws: a link to the question.
    assert f'href="/requests/{ref}/confirm-withdrawal">Withdraw this request</a>' in page
    assert f'action="/requests/{ref}/withdraw"' not in page

    question = client.get(f"/requests/{ref}/confirm-withdrawal")
    html = question.get_data(as_text=True)
    assert question.status_code == 200
    assert "<h1>Withdraw this request?</h1>" in html
    assert "you will not get an answer to it" in html
    assert "the records it holds back will be used and passed on again" in html
    assert f'action="/requests/{ref}/withdraw"' in html
    assert "Yes, withdraw this request" in html
    assert f'href="/requests/{ref}">No, keep my request</a>' in html
    with app.app_context():  # asking changed nothing
        assert requests.by_reference(ref).status == "open"

    assert client.post(f"/requests/{ref}/withdraw").status_code == 303
    with app.app_context():
        assert requests.by_reference(ref).status == "withdrawn"
    # Nothing left to withdraw: the question is not asked again.
    again = client.get(f"/requests/{ref}/confirm-withdrawal")
    assert again.status_code == 303 and again.headers["Location"] == f"/requests/{ref}"


def test_withdraw_question_is_for_the_requests_own_browser_only(app, client, mailbox):
    ref = _confirmed(
        app,
        client,
        mailbox,
        "/requests/new/objection",
        {"email": "x@example.org", "purpose": "profiling"},
    )
    assert app.test_client().get(f"/requests/{ref}/confirm-withdrawal").status_code == 404
    assert client.get("/requests/LR-0000-0000/confirm-withdrawal").status_code == 404
    html = client.get(f"/requests/{ref}/confirm-withdrawal").get_data(as_text=True)
    assert "holds back" not in html  # an objection weighed holds no records back


# --- asked again: linked, and the person told --------------------------------------------------


def _file_verified(type_: str, member: str = "m-1", **details) -> RightsRequest:
    return requests.file(
        type=type_,
        member_id=member,
        channel="api",
        verified=True,
        actor="apikey:platform",
        details=details,
    )


@pytest.fixture
def world(app):
    with app.app_context():
        for n in (1, 2):
            factories.member(n)
            factories.award(n, n, status="received")
        db.session.commit()


def test_asked_again_is_linked_and_the_person_told(app, client, mailbox, world, login_as):
    with app.app_context():
        first = _file_verified("rectification", records=["aw-1"], correction="Never came.")
        first.received_at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
        first_ref, first_id = first.reference, first.id
        db.session.commit()
    ref = _confirmed(
        app,
        client,
        mailbox,
        "/requests/new/correction",
        {"email": "person1@example.org", "correction": "No phone.", "records": "aw-1"},
    )
    sentence = (
        f"You already asked us this on 3 November ({first_ref}); we will answer both together."
    )
    with app.app_context():
        second = requests.by_reference(ref)
        assert second.linked_to_id == first_id
        second_id = second.id
        kinds = {
            (e.request_id, e.kind, e.note)
            for e in db.session.execute(select(RequestEvent)).scalars()
            if e.kind == "answered_together"
        }
        assert kinds == {
            (second.id, "answered_together", f"with {first_ref}"),
            (first_id, "answered_together", f"with {ref}"),
        }
        audit = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "request.linked")
        ).scalar_one()
        assert audit.target == f"request:{second.id}"
    deliver(app)
    confirmation = [
        m for m in mailbox.to("person1@example.org") if "We received your request" in m["Subject"]
    ]
    assert confirmation and sentence in mailbox.body(confirmation[-1])
    page = client.get(f"/requests/{ref}").get_data(as_text=True)
    assert sentence in page
    # The officer sees it too, beside the request's facts, with a way to the first one.
    officer = login_as("officer")
    page = officer.get(f"/dashboard/requests/{second_id}").get_data(as_text=True)
    assert "Answered together with" in page
    assert f'href="/dashboard/requests/{first_id}">{first_ref}</a>' in page


@pytest.mark.parametrize(
    ("first", "second", "linked"),
    [
        # Rights that name records: linked when they name one in common.
        ({"records": ["aw-1", "profile.name"]}, {"records": ["profile.name"]}, True),
        ({"records": ["aw-1"]}, {"records": ["profile.name"]}, False),
        ({}, {}, False),  # neither names a record: nothing says they are the same
    ],
)
def test_corrections_are_linked_by_the_records_they_name(app, world, first, second, linked):
    with app.app_context():
        a = _file_verified("rectification", correction="x", **first)
        b = _file_verified("rectification", correction="y", **second)
        assert (b.linked_to_id == a.id) is linked
        assert a.linked_to_id is None


def test_rights_without_records_are_linked_by_type_and_what_they_name(app, world):
    with app.app_context():
        a = _file_verified("objection", purpose="profiling")
        b = _file_verified("objection", purpose="profiling")
        c = _file_verified("objection", purpose="legitimate_interests")
        assert a.status == "open" and b.linked_to_id == a.id
        assert c.linked_to_id is None  # another use objected to: another request
        d = _file_verified("restriction", grounds="legal_claims", records=["aw-1"])
        assert d.linked_to_id is None  # another right


def test_only_open_verified_requests_of_the_same_person_count(app, world):
    with app.app_context():
        # Another person's, the same person's still unconfirmed one, and a closed one.
        _file_verified("rectification", member="m-2", correction="x", records=["aw-1"])
        unconfirmed = requests.file(
            type="rectification",
            email="person1@example.org",
            channel="web",
            actor="subject",
            details={"correction": "x", "records": ["aw-1"]},
        )
        assert unconfirmed.status == "awaiting_verification"
        closed = _file_verified("rectification", correction="x", records=["aw-1"])
        requests.withdraw(closed, actor="subject")
        fresh = _file_verified("rectification", correction="y", records=["aw-1"])
        assert fresh.linked_to_id is None
        # The unconfirmed one, once confirmed, is linked to the fresh one (open, verified).
        requests.verify_manually(unconfirmed, reason="called in", actor="officer")
        assert unconfirmed.linked_to_id == fresh.id
        db.session.commit()
