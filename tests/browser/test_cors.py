"""The client library on a page of another origin, in Chromium: Taskstream on one port,
the page on another (a plain static server), `TASKSTREAM_CORS_ORIGINS` naming the page's
origin. Sign in, start tasks, follow them over SSE, the WebSocket and polling, download an
export with its progress; and a page of an origin not named gets nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.browser.conftest import static_origin
from tests.server.test_exports import exported, project_with_everything
from tests.support import WAIT, Proc, signup

# Runs in the page: everything a React app on its own origin does first.
FOLLOW = """async ([base, email, password]) => {
  const { TaskstreamClient, storedSession } = await import(`${base}/static/js/taskstream.js`);
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const tokens = (await login.json()).data.tokens;
  const session = storedSession(base);
  session.save(tokens);
  const followed = {};
  for (const transport of ["sse", "ws", "poll"]) {
    const started = await fetch(`${base}/api/v1/demo/tasks`, {
      method: "POST",
      headers: { Authorization: `Bearer ${tokens.accessToken}`,
                 "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      body: JSON.stringify({ steps: 4, stepSeconds: 0.1 }),
    });
    const taskId = (await started.json()).data.taskId;
    const client = new TaskstreamClient({ baseUrl: base, auth: session, transport,
                                          pollInterval: 200 });
    followed[transport] = await new Promise((resolve) => {
      const seen = [], transports = [];
      client.subscribeTask(taskId, {
        onEvent: (type) => seen.push(type),
        onTransport: (name) => transports.push(name),
        onCompleted: () => resolve({ how: "completed", seen, transports }),
        onError: (error) => resolve({ how: "error: " + error.message, seen, transports }),
      });
    });
    client.close();
  }
  return { status: login.status, followed };
}"""

# Runs in the page: a download read as it arrives, its progress from Content-Length.
DOWNLOAD = """async ([url, token]) => {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  const total = Number(response.headers.get("Content-Length"));
  const reader = response.body.getReader();
  const progress = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.length;
    progress.push(Math.round((100 * received) / total));
  }
  return { status: response.status, total, received, progress,
           etag: response.headers.get("ETag") };
}"""

# Runs in the page: what a page of an origin not named can do (nothing).
REFUSED = """async ([base, wsUrl]) => {
  let fetched;
  try {
    await fetch(`${base}/api/v1/auth/login`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    fetched = "answered";
  } catch (error) {
    fetched = error.name;
  }
  const socket = await new Promise((resolve) => {
    const ws = new WebSocket(wsUrl);
    ws.onopen = () => resolve("open");
    ws.onclose = (event) => resolve(`closed ${event.code}`);
  });
  return { fetched, socket };
}"""


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[int]:
    """A page's own origin: a static server of one empty page, on a port of its own."""
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    async with static_origin(tmp_path) as port:
        yield port


@pytest.fixture
def taskstream(private: Callable[..., Proc], origin: int) -> Proc:
    web = private("web", TASKSTREAM_CORS_ORIGINS=f"http://127.0.0.1:{origin}")
    private("worker")
    return web


async def test_a_page_of_a_named_origin_signs_in_follows_every_transport_and_downloads(
    page: Page, origin: int, taskstream: Proc
):
    async with httpx.AsyncClient(base_url=taskstream.url, timeout=WAIT) as http:
        user = await signup(http)
    await page.goto(f"http://127.0.0.1:{origin}/")
    done: dict[str, Any] = await page.evaluate(FOLLOW, [taskstream.url, user.email, user.password])
    assert done["status"] == 200
    for transport, followed in done["followed"].items():
        assert followed["how"] == "completed", (transport, followed)
        assert followed["transports"] == [transport]
        assert followed["seen"][-1] == "completed"
    async with httpx.AsyncClient(
        base_url=taskstream.url, timeout=WAIT * 3, headers=user.headers
    ) as http:
        made = await exported(http, await project_with_everything(http), format="pdf")
    url = taskstream.url + made["downloadUrl"]
    got: dict[str, Any] = await page.evaluate(DOWNLOAD, [url, user.access])
    assert got["status"] == 200 and got["received"] == got["total"] == made["size"]
    assert got["progress"][-1] == 100 and got["etag"] == f'"{made["sha256"]}"'


async def test_a_page_of_an_origin_not_named_gets_no_grant_and_no_socket(
    page: Page, origin: int, taskstream: Proc
):
    async with httpx.AsyncClient(base_url=taskstream.url, timeout=WAIT) as http:
        user = await signup(http)
        ticket = (await http.post("/api/v1/stream-tickets", headers=user.headers)).json()
    ws_url = taskstream.url.replace("http", "ws") + f"/api/v1/ws?ticket={ticket['data']['ticket']}"
    await page.goto(f"http://localhost:{origin}/")  # the same page, another origin
    done: dict[str, Any] = await page.evaluate(REFUSED, [taskstream.url, ws_url])
    assert done == {"fetched": "TypeError", "socket": "closed 1006"}
