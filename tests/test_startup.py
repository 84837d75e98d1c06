"""Start-up (issue 17): the app imports only what every process needs. Pillow (pictures),
segno (an officer's enrolment code) and Playwright (the browser tests) are imported where they
are used, so a server or ``flask worker`` that never uses them neither waits for them at start
nor holds them in memory."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEVER_AT_START = ("PIL", "segno", "playwright")

PROBE = """
import json, sys
from app import create_app
create_app(instance_path=sys.argv[1])
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_create_app_imports_no_heavy_package_that_only_some_pages_use(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETHE_")}
    env["LETHE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'lethe.db'}"
    env["LETHE_KEYSTORE_URL"] = f"sqlite:///{tmp_path / 'keystore.db'}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "instance")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & set(NEVER_AT_START), sorted(loaded & set(NEVER_AT_START))
