"""Sending one email: SMTP in production and tests, files under ``instance/mail`` in development.

Development mail holds what real mail would (addresses, links, a record key), so it is not
kept: each subject's files sit in a folder of their own, removed when they are erased, and
every file is removed a week after it was written (``DEV_MAIL_DAYS``)."""

import shutil
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

from storage.clock import utcnow

DEV_MAIL_DAYS = 7


def build(to: str, subject: str, body: str, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    cfg = current_app.config
    # People know the platform, not Lethe: its name is the From name; MAIL_SENDER the address.
    address = parseaddr(cfg["MAIL_SENDER"])[1] or cfg["MAIL_SENDER"]
    msg["From"] = formataddr((cfg["PLATFORM_NAME"], address))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(idstring=message_id.replace("-", ""))
    msg.set_content(body)
    return msg


def send(msg: EmailMessage, *, subject_id: str | None = None) -> None:
    """Send ``msg``; in development, write it to the subject's folder of ``MAIL_DIR``."""
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "file":
        root = Path(cfg["MAIL_DIR"])
        folder = root / (subject_id or "no-subject")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{msg['Message-ID'].strip('<>').split('@')[0]}.eml"
        (folder / name).write_bytes(bytes(msg))
        _prune(root)
        return
    with smtplib.SMTP(cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), timeout=15) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        smtp.send_message(msg)


def forget_subject(subject_id: str) -> None:
    """Development mail: remove the subject's folder (at erasure). No-op with SMTP."""
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "file" and subject_id:
        shutil.rmtree(Path(cfg["MAIL_DIR"]) / subject_id, ignore_errors=True)


def _prune(root: Path) -> None:
    """Development mail older than DEV_MAIL_DAYS goes (the files' own times, not the clock's:
    a test's frozen clock must not empty the folder)."""

    cutoff = time.time() - DEV_MAIL_DAYS * 86400
    for path in root.glob("*/*.eml"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass
