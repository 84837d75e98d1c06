"""``flask retention ...``: apply every retention policy now, or see what would go."""

import logging
import sys

import click
from flask import Flask
from flask.cli import AppGroup

from rights.erasure import retention

group = AppGroup("retention", help="Retention: sweep expired records, see what is due.")


@group.command("sweep")
@click.option("--dry-run", is_flag=True, help="Say what would go (counts, oldest dates).")
@click.option(
    "--batch",
    default=retention.BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Rows per transaction.",
)
def sweep(dry_run: bool, batch: int) -> None:
    """Apply every policy: delete or anonymise what has run its course, skipping held records
    and recording the run. Safe to run from several schedulers at once. Prints counts only."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if dry_run or not sys.stdout.isatty():
        outcomes = retention.run(actor="cli", dry_run=dry_run, batch=batch)
    else:
        total = sum(retention.due_counts().values())
        with click.progressbar(length=total, label="Sweeping", show_pos=True) as bar:
            outcomes = retention.run(
                actor="cli", batch=batch, progress=lambda _key, n: bar.update(n)
            )
    verb = "would go" if dry_run else "done"
    click.echo(f"{'category':24} {'action':10} {'expired':>9} {'retained':>9} {'held':>6}  oldest")
    for o in outcomes:
        oldest = o.oldest.date().isoformat() if o.oldest else ""
        click.echo(
            f"{o.key:24} {o.action:10} {o.expired:9d} {o.retained_removed:9d} {o.held:6d}  {oldest}"
        )
    total = sum(o.expired + o.retained_removed for o in outcomes)
    click.echo(f"{total} record(s) {verb}; {sum(o.held for o in outcomes)} held")


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
