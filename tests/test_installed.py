"""The product a user installs, not this checkout: the wheel, installed with no extras into
a fresh virtual environment outside the checkout, driven over HTTP only from an empty
directory. It fails if a module the package imports at run time is only in a dev extra,
or if the code reads a file beside itself that the wheel does not carry."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from taskstream.embedded import free_port
from tests.server.conftest import ANSWERS
from tests.support import ROOT, WAIT, collect, signup, start_demo, wait_for_status

NOT_SOURCES = (".*", "build", "dist", "*.egg-info", "__pycache__", "docs")
# building and installing from the package index takes a while, once per run
pytestmark = pytest.mark.timeout(900)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    home: Path  # an empty directory to run it from

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "taskstream"), *args], cwd=self.home, env=new_user_env(),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def new_user_env() -> dict[str, str]:
    """This machine's environment without anything the suite or a checkout would add."""
    ours = ("TASKSTREAM_", "REDIS_", "GEMINI_", "SMTP_", "PYTHON", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(ours)}


def check(*command: str | Path, cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, env=new_user_env(), capture_output=True, text=True)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    assert not root.is_relative_to(ROOT)
    # built from a copy: a build writes `build/` and `*.egg-info` beside the sources
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    check(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", root / "dist",
          source, cwd=root)  # fmt: skip
    (wheel,) = (root / "dist").glob("taskstream-*.whl")
    venv.create(root / "venv", with_pip=True)
    check(root / "venv" / "bin" / "pip", "install", "--quiet", wheel, cwd=root)
    (root / "home").mkdir()
    return Installed(wheel, root / "venv" / "bin", root / "home")


def test_the_wheel_carries_its_page_and_scripts_and_leaves_out_tests_and_benches(
    installed: Installed,
):
    names = zipfile.ZipFile(installed.wheel).namelist()
    for shipped in ("server/static/index.html", "server/static/js/taskstream.js",
                    "server/static/js/taskstream.d.ts", "server/static/js/taskstream-react.js",
                    "server/static/js/taskstream-react.d.ts", "jobs/record/write.lua",
                    "jobs/record/read.lua", "jobs/record/owner.lua"):  # fmt: skip
        assert shipped in names
    assert not [n for n in names if n.startswith(("bench/", "tests/", "static/"))]


def test_every_module_of_the_package_imports_without_the_dev_tools(installed: Installed):
    program = """
import importlib, pkgutil, sys, jobs, server, taskstream
for package in (jobs, server, taskstream):
    assert package.__file__.startswith(sys.argv[1]), package.__file__
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
"""
    venv_root = str(installed.bin.parent)
    check(installed.bin / "python", "-c", program, venv_root, cwd=installed.home)


@pytest.fixture(scope="module")
def up(installed: Installed) -> Iterator[str]:
    """`taskstream up` of the installed package, on a free port, REDIS_URL unset, with two
    web processes (the default of `taskstream web` on a machine of two cores or more)."""
    port = free_port()
    log = installed.home.parent / "up.log"
    with log.open("w") as out:  # a file, not a pipe: the children write their logs there too
        process = subprocess.Popen(
            [installed.bin / "taskstream", "up", "--port", str(port), "--processes", "2"],
            cwd=installed.home,
            env=new_user_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"ready at (http://\S+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)  # a process's output, not an event of ours, is awaited
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(WAIT)
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert (installed.home / ".taskstream" / "valkey").is_dir()


async def test_up_serves_a_new_users_whole_flow_over_http(up: str):
    async with httpx.AsyncClient(base_url=up, timeout=WAIT) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "<title>Taskstream" in page.text
        library = await http.get("/static/js/taskstream.js")
        assert library.status_code == 200 and "TaskstreamClient" in library.text
        assert library.headers["content-type"].startswith("text/javascript")
        assert (await http.get("/docs")).status_code == 200

        user = await signup(http)
        http.headers.update(user.headers)
        await wait_for_status(http, user.signup_task, {"completed"})
        mailbox = (await http.get("/dev/mail")).text
        link = re.search(rf'href="{re.escape(up)}/verify-email\?token=([\w-]+)"', mailbox)
        assert user.email in mailbox and link, mailbox[-2000:]
        verified = await http.post("/api/v1/auth/verify-email", json={"token": link.group(1)})
        assert verified.json()["data"]["emailVerified"] is True

        demo = await start_demo(http, steps=3, stepSeconds=0.05)
        events = await collect(http, f"/api/v1/tasks/{demo}/events")
        assert (events[0].event, events[-1].event) == ("status", "completed")

        project = str(uuid.uuid4())
        generate = await http.post(
            "/api/v1/business-plan/generate", json=ANSWERS | {"projectId": project}
        )
        plan = await collect(http, generate.json()["data"]["links"]["events"])
        assert plan[-1].event == "completed"
        assert "".join(e.data["text"] for e in plan if e.event == "partial")

        export = await http.post(f"/api/v1/projects/{project}/export", json={"format": "pdf"})
        export_id = export.json()["data"]["taskId"]
        await wait_for_status(http, export_id, {"completed"})
        pdf = await http.get(f"/api/v1/exports/{export_id}/download")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert ANSWERS["projectName"] in text and ANSWERS["solution"] in text


async def test_the_installed_loadtest_drives_it_and_accounts_for_every_event(
    installed: Installed, up: str
):
    done = await asyncio.to_thread(
        # 5 tasks: within a new (unverified) account's share of the defaults
        installed.run, "loadtest", "--url", up, "--clients", "20", "--share", "4", "--seconds", "2",
        "--step", "0.2", "--ramp", "0.5", "--max-seconds", "60", "--json", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["connected"] == report["finished"] == 20
    events = report["events"]
    assert events["expected"] > 0 and events["received"] == events["expected"]
    assert (events["lost"], events["duplicated"]) == (0, 0)


def test_the_installed_loadtest_asks_for_matplotlib_before_the_load_not_after(
    installed: Installed, tmp_path: Path
):
    lacking = subprocess.run(
        [str(installed.bin / "python"), "-c", "import matplotlib"], capture_output=True
    )
    assert lacking.returncode != 0  # not installed without the dev extra
    chart = tmp_path / "latency.png"
    # no server at this URL: the load would fail, so the refusal must come before it
    done = installed.run("loadtest", "--url", "http://127.0.0.1:9", "--plot", str(chart))
    assert done.returncode != 0
    assert "--plot needs matplotlib: pip install matplotlib" in done.stderr, done.stderr[-2000:]
    assert not chart.exists()
