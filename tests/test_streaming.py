"""Streamed answers go out in pieces of a useful size (web/streaming.py, issue 17)."""

from web.streaming import coalesced


def test_small_pieces_are_gathered_and_nothing_is_lost_or_reordered():
    pieces = [f"{n}," for n in range(10_000)]
    out = list(coalesced(pieces, size=1000))
    assert "".join(out) == "".join(pieces)
    assert all(len(p) >= 1000 for p in out[:-1]) and len(out) < len(pieces) / 100


def test_bytes_stay_bytes_and_an_empty_body_is_empty():
    assert list(coalesced([b"a", b"b"], size=10)) == [b"ab"]
    assert list(coalesced([])) == []


def test_a_report_download_is_a_few_writes(app, client, api_key):
    """The API's access report for a member with records comes in one piece, not one per
    record (each piece is a chunk and a socket write)."""
    from tests import factories

    with app.app_context():
        factories.member(1)
        factories.commit()
    filed = client.post(
        "/api/v1/requests",
        json={"type": "access", "member_id": "m-1", "verified": True},
        headers=api_key,
    ).get_json()
    resp = client.get(f"/api/v1/requests/{filed['id']}/report", headers=api_key, buffered=False)
    pieces = list(resp.response)
    assert resp.status_code == 200 and len(pieces) == 1
    assert b'"categories"' in b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces)
