"""The client as an npm package, in a React app of its own: `npm pack` of
static/js, installed into a fresh Vite + React + TypeScript app
(tests/browser/npm_app) with `npm install ./taskstream-client-<v>.tgz`, type-checked
(`tsc --noEmit`), built (`vite build`), served on its own origin and driven in Chromium
against a running Taskstream: a plan followed to completion with its live text, and a
second one cancelled mid-way."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import static_origin
from tests.server.conftest import ANSWERS
from tests.support import ROOT, WAIT, Account, Proc, signup

CLIENT = ROOT / "static" / "js"
APP = ROOT / "tests" / "browser" / "npm_app"
TIMEOUT_MS = WAIT * 1000


def npm(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["npm", "--no-audit", "--no-fund", "--loglevel=error", *args], cwd=cwd,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_packages_version_is_the_python_packages():
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert json.loads((CLIENT / "package.json").read_text())["version"] == python


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app, with the packed client installed, checked and built: its `dist`."""
    work = tmp_path_factory.mktemp("npm")
    (tarball,) = [
        line for line in npm("pack", str(CLIENT), "--pack-destination", str(work), cwd=work)
        .splitlines() if line.endswith(".tgz")
    ]  # fmt: skip
    app = work / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    npm("install", "--prefer-offline", str(work / tarball), cwd=app)
    installed = json.loads((app / "node_modules/taskstream-client/package.json").read_text())
    assert installed["version"] == json.loads((CLIENT / "package.json").read_text())["version"]
    npm("exec", "--", "tsc", "--noEmit", cwd=app)
    npm("exec", "--", "vite", "build", cwd=app)
    return app / "dist"


@pytest.fixture
async def served(built: Path) -> AsyncIterator[int]:
    """The built app on an origin of its own."""
    async with static_origin(built) as port:
        yield port


async def open_app(page: Page, port: int, api: str, user: Account, task_id: str) -> None:
    given = {"api": api, "taskId": task_id,
             "tokens": {"accessToken": user.access, "refreshToken": user.refresh}}  # fmt: skip
    await page.goto(f"http://127.0.0.1:{port}/#{quote(json.dumps(given))}")


async def test_a_plan_is_followed_with_its_live_text_and_another_cancelled_mid_way(
    page: Page, served: int, private: Callable[..., Proc]
):
    web = private("web", TASKSTREAM_CORS_ORIGINS=f"http://127.0.0.1:{served}")
    private("worker")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)

        async def generate() -> str:
            started = await http.post("/api/v1/business-plan/generate", json=ANSWERS)
            assert started.status_code == 202, started.text
            task_id: str = started.json()["data"]["taskId"]
            return task_id

        await open_app(page, served, web.url, user, await generate())
        status = page.locator("#status")
        await expect(status).to_have_attribute("data-status", "completed", timeout=TIMEOUT_MS)
        await expect(page.locator("#text")).to_contain_text("동네빵집")
        await expect(page.locator("#bar")).to_have_attribute("value", "100")
        lengths: list[int] = await page.evaluate("window.lengths")
        final = lengths[-1]
        assert any(0 < n < final for n in lengths), lengths  # written live, not at the end

        await open_app(page, served, web.url, user, await generate())
        await page.reload()  # a new fragment alone does not load the page again
        await expect(page.locator("#text")).not_to_be_empty(timeout=TIMEOUT_MS)
        await page.get_by_role("button", name="생성 중단").click()  # the hook's cancel
        await expect(status).to_have_attribute("data-status", "cancelled", timeout=TIMEOUT_MS)
