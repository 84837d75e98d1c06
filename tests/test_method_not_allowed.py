"""405 Method Not Allowed carries ``Allow`` (RFC 9110, 15.5.6) listing what the route accepts,
on the JSON API (in the API's error shape) and on the HTML pages (the error page)."""

import pytest

from tests.helpers import API, assert_error


def _allowed(resp) -> set[str]:
    assert "Allow" in resp.headers, dict(resp.headers)
    return {m.strip() for m in resp.headers["Allow"].split(",") if m.strip()}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("TRACE", "/members", {"POST", "OPTIONS"}),
        ("GET", "/members", {"POST", "OPTIONS"}),
        ("DELETE", "/requests", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("PUT", "/requests/some-id", {"GET", "HEAD", "OPTIONS"}),
        ("GET", "/requests/some-id/withdraw", {"POST", "OPTIONS"}),
        ("PATCH", "/statements", {"POST", "OPTIONS"}),
        ("POST", "/openapi.json", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_api_405_has_allow_and_the_json_error_shape(client, api_key, method, path, expected):
    resp = client.open(API + path, method=method, headers=api_key)
    assert_error(resp, 405, "method_not_allowed")
    assert _allowed(resp) == expected


def test_api_405_without_a_key_still_says_what_is_allowed(client):
    resp = client.open(API + "/members", method="TRACE")
    assert_error(resp, 405)
    assert "POST" in _allowed(resp)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("PUT", "/", {"GET", "HEAD", "OPTIONS"}),
        ("DELETE", "/requests/new", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("TRACE", "/records", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("GET", "/requests/REF-1/withdraw", {"POST", "OPTIONS"}),
    ],
)
def test_html_405_has_allow_and_the_error_page(client, method, path, expected):
    resp = client.open(path, method=method)
    assert resp.status_code == 405
    assert resp.mimetype == "text/html"
    assert "cannot be used this way" in resp.get_data(as_text=True)
    assert _allowed(resp) == expected


def test_other_errors_carry_no_allow(client, api_key):
    assert "Allow" not in client.get(API + "/requests/nope", headers=api_key).headers
    assert "Allow" not in client.get("/no-such-page").headers
