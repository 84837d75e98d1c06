"""Portability (Art. 20): only what the subject provided, as JSON and as a zip of CSVs."""

import csv
import io
import json
import zipfile

from demo import loader as demo
from rights.access import portability
from rights.holdings import records
from rights.lifecycle import requests
from storage.datamap import CATEGORIES
from storage.db import db
from storage.models import Feedback, FeedbackPicture
from tests import factories
from tests.helpers import deliver
from tests.test_verification import _file, _link

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f2b5ad0000000049454e44ae426082"
)


def _export(app, email):
    with app.app_context():
        req = requests.file(
            type="portability", email=email, channel="api", verified=True, actor="test"
        )
        db.session.commit()
        data = json.loads("".join(portability.stream_json(req)))
        archive = zipfile.ZipFile(portability.build_zip(req))
        return data, archive


def test_export_holds_only_subject_provided_fields(app):
    with app.app_context():
        demo.load(extra_members=2)
        db.session.commit()
    data, archive = _export(app, demo.STORY_EMAIL)
    portable = {c.key: {f.name for f in c.portable_fields} for c in CATEGORIES if c.portable_fields}
    assert set(data["categories"]) == set(portable)
    # Inferred and platform-generated data is not "provided by the subject".
    for key in ("influence_scores", "influence_topics", "disclosures", "promotions", "perk_awards"):
        assert key not in data["categories"]
    for key, rows in data["categories"].items():
        for row in rows:
            assert set(row) == portable[key]
            assert "provenance" not in row
    profile = data["categories"]["profile"][0]
    assert profile["email"] == demo.STORY_EMAIL and profile["name"] == "Sam Rivera"
    assert "status" not in profile and "member_id" not in profile
    assert {c["purpose"] for c in data["categories"]["consents"]} == {
        "name_and_likeness",
        "email_marketing",
    }
    # (The story's own rectification request names the phone: that text is the subject's.)
    text = json.dumps({k: v for k, v in data["categories"].items() if k != "rights_requests"})
    assert "score" not in text and "Nova X1" not in text


def test_zip_has_one_csv_per_category_and_pictures_as_files(app):
    with app.app_context():
        member = factories.member(1)
        feedback = Feedback(subject_id=member.subject_id)
        records.apply_changes(
            feedback,
            {"rating": 4, "text_enc": "Great, thanks"},
            subject_id=member.subject_id,
            source="feedback-form",
            actor="member",
        )
        records.apply_changes(
            FeedbackPicture(subject_id=member.subject_id),
            {"feedback_id": feedback.id, "media_type": "image/png", "content_enc": PNG},
            subject_id=member.subject_id,
            source="feedback-form",
            actor="member",
        )
        db.session.commit()
    data, archive = _export(app, "person1@example.org")
    names = set(archive.namelist())
    assert {
        "README.txt",
        "profile.csv",
        "consents.csv",
        "feedback.csv",
        "feedback_pictures.csv",
        "rights_requests.csv",
    } <= names
    rows = list(csv.DictReader(io.TextIOWrapper(archive.open("feedback.csv"), "utf-8")))
    assert rows == [{"rating": "4", "text": "Great, thanks"}]
    pics = list(csv.DictReader(io.TextIOWrapper(archive.open("feedback_pictures.csv"), "utf-8")))
    assert pics[0]["file"].startswith("pictures/") and pics[0]["file"].endswith(".png")
    assert archive.read(pics[0]["file"]) == PNG
    profile = list(csv.DictReader(io.TextIOWrapper(archive.open("profile.csv"), "utf-8")))
    assert profile[0]["email"] == "person1@example.org"
    assert data["categories"]["feedback_pictures"][0]["content"]  # base64 in JSON


def test_web_downloads_for_portability(app, client, mailbox):
    with app.app_context():
        factories.member(1)
        factories.commit()
    _file(client, type_="portability")
    deliver(app)
    ref = client.post(_link(mailbox, "person1@example.org")).headers["Location"].rsplit("/")[-1]
    page = client.get(f"/requests/{ref}").get_data(as_text=True)
    assert "CSV files in a zip" in page
    z = client.get(f"/requests/{ref}/export.zip")
    assert z.status_code == 200 and z.headers["Cache-Control"] == "no-store"
    assert zipfile.ZipFile(io.BytesIO(z.data)).read("profile.csv")
    j = client.get(f"/requests/{ref}/export.json")
    assert j.get_json()["categories"]["profile"][0]["email"] == "person1@example.org"
    # An access report is not offered for a portability request, and vice versa.
    assert client.get(f"/requests/{ref}/report.json").status_code == 404
