"""Emailed-link tokens never reach the access log."""

import logging

from web.logging import RedactTokens, redact


def test_redact_hides_tokens_in_paths():
    line = '"GET /verify/AbC_d-123xyz HTTP/1.1" 200 and POST /resume/Zz9_-Q 303'
    out = redact(line)
    assert "AbC_d-123xyz" not in out and "Zz9_-Q" not in out
    assert "/verify/[redacted]" in out and "/resume/[redacted]" in out


def test_werkzeug_access_lines_are_redacted(client, caplog):
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("werkzeug").filters)
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s - - "%s" %s',
        ("127.0.0.1", "GET /verify/secret123 HTTP/1.1", "200"),
        None,
    )
    for f in logging.getLogger("werkzeug").filters:
        f.filter(record)
    assert "secret123" not in record.getMessage()


def test_gunicorn_style_mapping_args_are_redacted():
    record = logging.LogRecord(
        "gunicorn.access",
        logging.INFO,
        __file__,
        1,
        '%(h)s "%(m)s %(U)s" %(s)s',
        ({"h": "127.0.0.1", "m": "POST", "U": "/resume/tok_123", "s": "303"},),
        None,
    )
    RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1 "POST /resume/[redacted]" 303'
