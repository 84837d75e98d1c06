from tests.helpers import deliver, member_body


def test_index_lists_every_right(client):
    page = client.get("/").get_data(as_text=True)
    for title in (
        "See my data",
        "Take my data elsewhere",
        "Correct my data",
        "Delete my data",
        "Pause the use of my data",
        "Object to a use of my data",
        "Withdraw my consent",
    ):
        assert title in page


def test_access_request_end_to_end(app, client, api_key, mailbox):
    assert client.post("/api/v1/members", json=member_body(), headers=api_key).status_code == 201
    resp = client.post("/requests/new", data={"type": "access", "email": "person1@example.org"})
    assert resp.status_code == 303
    deliver(app)
    body = mailbox.body(mailbox.last_to("person1@example.org"))
    link = next(w for w in body.split() if "/verify/" in w)
    path = link.replace("http://lethe.test", "")
    assert client.get(path).status_code == 200
    resp = client.post(path)
    assert resp.status_code == 303
    status = client.get(resp.headers["Location"])
    assert "completed" in status.get_data(as_text=True)
    ref = resp.headers["Location"].rsplit("/", 1)[-1]
    report = client.get(f"/requests/{ref}/report.json")
    assert report.status_code == 200
    assert report.headers["Cache-Control"] == "no-store"
    assert report.get_json()["categories"][0]["records"][0]["email"] == "person1@example.org"
    html = client.get(f"/requests/{ref}/report")
    assert "Person 1" in html.get_data(as_text=True)
