"""Sending one email: SMTP in production and tests, files under ``instance/mail`` in development.

Development mail holds what real mail would (addresses, links, a record key), so it is not
kept: each subject's files sit in a folder of their own, removed when they are erased, and
every file is removed a week after it was written (``DEV_MAIL_DAYS``).

Over SMTP a batch of emails shares one connection (:class:`Session`): one TCP and TLS
handshake and one sign-in for the worker's batch, not one per email."""

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
SMTP_TIMEOUT = 15  # seconds: to connect, and for each answer


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


def send(
    msg: EmailMessage, *, subject_id: str | None = None, session: "Session | None" = None
) -> None:
    """Send ``msg`` — over ``session``'s connection when one is given (a batch's), else over a
    connection of its own; in development, write it to the subject's folder of ``MAIL_DIR``."""
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "file":
        root = Path(cfg["MAIL_DIR"])
        folder = root / (subject_id or "no-subject")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{msg['Message-ID'].strip('<>').split('@')[0]}.eml"
        (folder / name).write_bytes(bytes(msg))
        _prune(root)
        return
    if session is not None:
        session.send(msg)
        return
    with Session() as own:
        own.send(msg)


def _connect() -> smtplib.SMTP:
    """A new SMTP connection, under STARTTLS and signed in when the configuration says so."""
    cfg = current_app.config
    smtp = smtplib.SMTP(cfg["MAIL_SERVER"], int(cfg["MAIL_PORT"]), timeout=SMTP_TIMEOUT)
    try:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _gone(exc: smtplib.SMTPException) -> bool:
    """The server hung up, or said it is about to (421: closing the channel)."""
    return isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421
    )


class Session:
    """One SMTP connection for a batch of emails (the worker's: one ``deliver_due_steps``):
    opened at the first email — a batch of jobs alone connects to nothing — reused for the
    next, and closed (QUIT) when the ``with`` block ends, however it ends.

    A connection the server dropped meanwhile (an idle timeout while a long job ran, a server
    that closes after each message, a 421) is opened again once and the message sent again
    over it; a second failure is the message's (the outbox retries it). One message's failure
    never reaches the next: after an SMTP error the session is reset (RSET), and after any
    other error, or a failed reset, the connection is dropped and the next email opens one."""

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = _connect()
        try:
            self._smtp.send_message(msg)
            return
        except smtplib.SMTPException as exc:
            if not _gone(exc):
                self._reset()
                raise
            self._drop()
        except BaseException:
            self._drop()
            raise
        # The server hung up (before this message was taken): once more, on a new connection.
        self._smtp = _connect()
        try:
            self._smtp.send_message(msg)
        except smtplib.SMTPException as exc:
            if _gone(exc):
                self._drop()
            else:
                self._reset()
            raise
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        """Say QUIT and close; a connection already gone is only let go."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _reset(self) -> None:
        """After a message the server refused: RSET, so the next starts clean; a connection
        that cannot even do that is dropped."""
        if self._smtp is None:
            return
        if self._smtp.sock is None:  # smtplib closed it itself (a 421)
            self._smtp = None
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


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
