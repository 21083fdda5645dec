"""The web app: it wires delivery only, loads none of the libraries jobs run on, and
refuses to be made without what every request needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs.infra.config import ConfigError, Settings
from server.app import create_app
from tests.conftest import TEST_ENV
from tests.support import ROOT, WAIT

KEY = {"TASKSTREAM_SECRET_KEY": TEST_ENV["TASKSTREAM_SECRET_KEY"]}

WORKER_ONLY = ("numpy", "fpdf", "docx", "google.genai")


def test_the_web_app_loads_no_library_that_only_jobs_use():
    program = f"""
import sys
from jobs.infra.config import Settings
from server.app import create_app
create_app(Settings.from_env({{"REDIS_URL": "redis://127.0.0.1:1/0", **{KEY!r}}}))
print(",".join(m for m in {WORKER_ONLY!r} if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # none of them


@pytest.mark.parametrize(
    ("env", "missing"),
    [({**KEY}, "REDIS_URL"), ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "TASKSTREAM_SECRET_KEY")],
    ids=["no-redis-url", "no-signing-key"],
)
def test_the_app_is_not_made_without_redis_or_a_signing_key(env: dict[str, str], missing: str):
    with pytest.raises(ConfigError, match=missing):
        create_app(Settings.from_env(env))
