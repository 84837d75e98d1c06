"""Signing keys, and verifying receipts and statements from the shell.

``flask keys rotate`` prints the new kid. ``flask receipts verify FILE [--jwks JWKS_FILE]`` (and
``statements verify``) prints the verified claims as JSON and exits 0, or prints one line saying
why and exits 1. With ``--jwks`` nothing but the two files is read: fully offline.
"""

import json
import re
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from rights.erasure import shredding
from rights.errors import InvalidSignature
from rights.ledger import signing
from storage.db import unit_of_work

keys_group = AppGroup(
    "keys", help="Signing keys for receipts and statements; shred epochs for subject keys."
)
receipts_group = AppGroup("receipts", help="Deletion receipts.")
statements_group = AppGroup("statements", help="Holdings statements.")

_FILE = click.Path(dir_okay=False, path_type=Path)
_JWKS_OPTION = click.option(
    "--jwks",
    "jwks_file",
    type=_FILE,
    help="A JWKS document (e.g. saved from /.well-known/jwks.json); default: the key store.",
)


@keys_group.command("rotate")
@click.option("--actor", default="cli", show_default=True, help="Who rotates (audit trail).")
def keys_rotate(actor: str) -> None:
    """Add a signing key and retire the current one; prints the new kid.

    Retired keys stay published, so everything they signed still verifies.
    """
    with unit_of_work():
        kid = signing.rotate(actor=actor)
    click.echo(kid)


@keys_group.command("shred")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--actor", default="cli", show_default=True, help="Who shreds (audit trail).")
def keys_shred(batch: int, actor: str) -> None:
    """End the current shred epoch now: re-wrap every surviving subject key under a new
    epoch's key, then destroy the old epoch key. From then on no copy of a key erased in that
    epoch — in the database, its log, backups or replicas — can be read. Resumable: run it
    again after an interruption."""
    result = shredding.shred_now(batch=batch, actor=actor)
    click.echo(
        f"re-wrapped {result['rewrapped']} key(s); destroyed epoch key(s): "
        f"{', '.join(result['destroyed']) or 'none'}"
    )
    if not result["done"]:
        raise click.ClickException("the shred is not finished: run it again")


@keys_group.command("recover")
@click.confirmation_option(
    prompt="Only after restoring the key store from a backup older than a shred: keys whose "
    "epoch key is gone are deleted for good. Go on?"
)
@click.option("--actor", default="cli", show_default=True, help="Who recovers (audit trail).")
def keys_recover(actor: str) -> None:
    """After restoring the key store from a backup older than a shred: record the epochs the
    key manager no longer holds as destroyed, delete the keys under them (nobody can ever read
    them again) and open a new epoch. Then run `flask erasure replay`."""
    result = shredding.recover(actor=actor)
    click.echo(
        f"epochs lost: {', '.join(result['epochs_lost']) or 'none'}; "
        f"unreadable keys deleted: {result['unreadable_keys']}"
    )


@keys_group.command("epochs")
def keys_epochs() -> None:
    """The shred epochs that still have a key (at most two: current, and retiring)."""
    for row in shredding.status():
        click.echo(f"{row['id']}  {row['state']:<9} {row['backend']:<6} ends {row['ends_at']}")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise click.ClickException(f"Cannot read {what} {path}: {reason}.") from None


def _token(text: str, path: Path, field: str) -> str:
    """A bare compact JWS, or a JSON file object carrying it in ``field``."""
    text = text.strip()
    if text.startswith("<"):  # the receipt file a person downloads: the JWS sits at its end
        found = re.search(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", text)
        if found is None:
            raise click.ClickException(f"{path} holds no signed receipt.")
        return found.group(0)
    if not text.startswith("{"):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        raise click.ClickException(f"{path} is neither a JWS nor valid JSON.") from None
    token = document.get(field) if isinstance(document, dict) else None
    if not isinstance(token, str):
        raise click.ClickException(f"{path} has no {field!r} field holding the JWS.")
    return token


def _key_set(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(_read(path, "key set"))
    except ValueError:
        raise click.ClickException(f"{path} is not valid JSON (expected a JWKS).") from None


def _verify(path: Path, jwks_file: Path | None, typ: str, field: str, what: str) -> None:
    token = _token(_read(path, what), path, field)
    try:
        claims = signing.verify(token, typ, jwks=_key_set(jwks_file))
    except InvalidSignature as exc:
        raise click.ClickException(f"The {what} does not verify: {exc.message}") from None
    click.echo(json.dumps(claims, indent=2, sort_keys=True, ensure_ascii=False))


@receipts_group.command("verify")
@click.argument("file", type=_FILE)
@_JWKS_OPTION
def receipts_verify(file: Path, jwks_file: Path | None) -> None:
    """Verify a deletion receipt (a bare JWS, or a receipt file with a "receipt" field)."""
    _verify(file, jwks_file, signing.RECEIPT_TYP, "receipt", "receipt")


@statements_group.command("verify")
@click.argument("file", type=_FILE)
@_JWKS_OPTION
def statements_verify(file: Path, jwks_file: Path | None) -> None:
    """Verify a holdings statement (a bare JWS, or JSON with a "statement" field)."""
    _verify(file, jwks_file, signing.STATEMENT_TYP, "statement", "statement")


def init_app(app: Flask) -> None:
    app.cli.add_command(keys_group)
    app.cli.add_command(receipts_group)
    app.cli.add_command(statements_group)
