"""Kill -9 during erasure, at several points, then run it again: it finishes, once."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rights.erasure import erasure
from rights.holdings import records
from rights.ledger import signing
from rights.lifecycle import requests
from storage.db import db
from storage.models import ErasureRun, Promotion, Receipt, SubjectKey
from tests import factories

ROOT = Path(__file__).resolve().parent.parent

# Runs the erasure in a child process that SIGKILLs itself on its Nth commit: no exception
# handler, no rollback, no atexit — what a crash or an OOM kill leaves behind.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {root!r})
    from app import create_app
    from rights.erasure import erasure
    from storage.db import db

    config = json.load(open(sys.argv[1]))
    app = create_app(config, instance_path=sys.argv[2])
    kill_at = int(sys.argv[4])
    with app.app_context():
        real_commit = db.session.commit
        seen = []

        def commit():
            seen.append(1)
            if len(seen) == kill_at:
                db.session.flush()  # the batch is written but not committed
                os.kill(os.getpid(), signal.SIGKILL)
            real_commit()

        db.session.commit = commit
        erasure.run(sys.argv[3], batch=100)
    """
)


@pytest.mark.parametrize("kill_at", [1, 2, 4, 7, 9, 11])
def test_kill_minus_nine_then_rerun_finishes_once(app, tmp_path, kill_at):
    with app.app_context():
        member = factories.member(1)
        factories.consent(1, 1)  # likeness is used only under a consent in force
        for n in range(450):
            records.upsert_promotion(
                {
                    "promotion_id": f"pr-{n}",
                    "member_id": "m-1",
                    "audience": "friends",
                    "message": "Person 1 won",
                    "uses_likeness": True,
                },
                source="promo-service",
                actor="spotlight",
            )
        factories.award(1, member_n=1)
        db.session.commit()
        subject_id = member.subject_id
        req = requests.file(
            type="erasure", member_id="m-1", channel="api", verified=True, actor="test"
        )
        db.session.commit()
        rid = req.id
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    config = {
        k: v for k, v in app.config.items() if isinstance(v, (str, int, bool)) and k.isupper()
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    child = subprocess.run(
        [
            sys.executable,
            str(script),
            str(config_path),
            str(tmp_path / "child-instance"),
            rid,
            str(kill_at),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -9, child.stderr[-2000:]
    with app.app_context():
        erasure.run(rid)
        erasure.run(rid)
        assert db.session.get(ErasureRun, rid).step == "completed"
        assert db.session.scalar(select(func.count()).select_from(Receipt)) == 1
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(Promotion)
                .where(Promotion.subject_id == subject_id)
            )
            == 0
        )
        assert db.session.get(SubjectKey, subject_id) is None
        assert requests.get(rid).status == "completed"
        receipt = db.session.execute(select(Receipt)).scalar_one()
        claims = signing.verify(receipt.jws, signing.RECEIPT_TYP)
        counted = {c["category"]: c["records"] for c in claims["categories"]}
        assert counted["promotions"] == 450  # what the killed run deleted is counted too
