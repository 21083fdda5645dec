"""The web process wires delivery only: it loads none of the libraries jobs run on."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT, WAIT

WORKER_ONLY = ("numpy", "fpdf", "docx", "google.genai")


def test_the_web_app_loads_no_library_that_only_jobs_use():
    program = f"""
import sys
from jobs.config import Settings
from server.app import create_app
create_app(Settings.from_env({{"REDIS_URL": "redis://127.0.0.1:1/0"}}))
print(",".join(m for m in {WORKER_ONLY!r} if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # none of them
