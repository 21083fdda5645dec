"""Real headless Chromium (Debian's, driven by Playwright) on the demo page."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from bench.common import wait_listening
from taskstream.embedded import free_port

CHROMIUM = os.environ.get("TASKSTREAM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; the test fails if the content security policy refused anything."""
    context = await browser.new_context(locale="ko-KR", viewport={"width": 900, "height": 1000})
    page = await context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    await context.close()
    assert refused == []


async def screenshot(page: Page, name: str) -> None:
    """Saved under $TASKSTREAM_SCREENSHOTS when set (docs/ holds the README's)."""
    folder = os.environ.get("TASKSTREAM_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@asynccontextmanager
async def static_origin(directory: Path) -> AsyncIterator[int]:
    """`directory` served on a port of its own (a page's own origin): the port."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_listening(port)
        yield port
    finally:
        server.terminate()
        server.wait()
