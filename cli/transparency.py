"""``flask transparency ...``: append what is queued now, and be a witness of a log (this one
or another Lethe's) from its public endpoints."""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from rights.ledger import transparency, witness
from storage.db import unit_of_work

group = AppGroup("transparency", help="The public transparency log of receipts and statements.")
LOG = "/.well-known/transparency"


def _fetch(url: str) -> str:
    """GET ``url``'s text (the tests replace this with their client). http(s) only."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("the log's address must start with https:// or http://")
    request = urllib.request.Request(url, headers={"User-Agent": "lethe-witness"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - checked above
        return response.read().decode("utf-8")


@group.command("sequence")
def sequence() -> None:
    """Append everything queued and sign a checkpoint (the worker does this on its own)."""
    total = 0
    while transparency.has_pending():
        with unit_of_work():
            total += transparency.sequence()
    head = transparency.latest()
    click.echo(f"appended {total}; the log has {head.size if head else 0} entries")


@group.command("verify")
@click.option(
    "--from",
    "saved",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The checkpoint this witness kept last time (a file; made on the first run). "
    "Replaced by the new one when the check passes.",
)
@click.option("--url", default=None, help="The log's server (default: this Lethe's PUBLIC_URL).")
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The verifier keys to trust, one per line (default: FROM.keys, fetched and kept "
    "on the first run).",
)
def verify(saved: Path, url: str | None, keys_file: Path | None) -> None:
    """Check that the log only grew since the checkpoint in FROM: exit 1, loudly, if it was
    rewritten (truncated, forked, an entry changed, removed or reordered)."""
    base = (url or current_app.config["PUBLIC_URL"]).rstrip("/")
    keys_file = keys_file or saved.with_name(saved.name + ".keys")
    try:
        first_keys = not keys_file.exists()
        keys = (_fetch(f"{base}{LOG}/keys") if first_keys else keys_file.read_text()).split()
        new_note = _fetch(f"{base}{LOG}/checkpoint")
        if first_keys:
            # Kept only once they verify the log's checkpoint: a log that has signed nothing
            # yet leaves nothing behind to trust.
            witness.open_checkpoint(new_note, keys)
            keys_file.write_text("".join(f"{k}\n" for k in keys))
            click.echo(f"trusting the log's keys as published now, kept in {keys_file}")
        if not saved.exists():
            checkpoint = witness.open_checkpoint(new_note, keys)
            saved.write_text(new_note)
            click.echo(f"first checkpoint kept: {checkpoint.size} entries ({checkpoint.origin})")
            return
        old_note = saved.read_text()
        old = witness.open_checkpoint(old_note, keys)
        new = witness.open_checkpoint(new_note, keys, origin=old.origin)
        learned = witness.new_keys_vouched_for(new_note, keys, _fetch(f"{base}{LOG}/keys").split())
        if learned:
            keys += learned
            keys_file.write_text("".join(f"{k}\n" for k in keys))
            for key in learned:
                click.echo(f"new signing key, cosigned by a key this witness trusts: {key}")
        proof = None
        if new.size > old.size > 0:
            answer = json.loads(
                _fetch(f"{base}{LOG}/proof/consistency?from={old.size}&to={new.size}")
            )
            proof = answer.get("consistency_path") if isinstance(answer, dict) else None
            if not isinstance(proof, list) or (answer.get("first"), answer.get("second")) != (
                old.size,
                new.size,
            ):
                raise witness.Rewritten("the log's consistency proof is not one for these sizes")
        outcome = witness.check(old_note, new_note, keys, proof)
    except witness.WitnessError as exc:
        click.echo(f"LOG REWRITTEN OR NOT GENUINE: {exc}", err=True)
        sys.exit(1)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        click.echo(f"could not check the log: {exc}", err=True)
        sys.exit(2)
    saved.write_text(new_note)
    click.echo(
        f"consistent: {outcome.old.size} -> {outcome.new.size} entries "
        f"(+{outcome.grew_by}); kept the new checkpoint in {saved}"
    )


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
