"""The client library on its own, in Chromium: timeout, the last fallback, tokens that
expire mid-task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from jobs.record.tasks import TaskStore
from tests.realtime.test_revocation import cancel_as_owner
from tests.support import WAIT, Proc, SseStream, signup, start_demo

# Runs in the page: follow one task with the library; resolves with what happened.
FOLLOW = """async ([taskId, tokens, options]) => {
  const { TaskstreamClient, storedSession } = await import("/static/js/taskstream.js");
  const session = storedSession();
  session.save(tokens);
  const client = new TaskstreamClient({ auth: session, ...options.client });
  return await new Promise((resolve) => {
    const seen = [];
    const transports = [];
    const end = (how) => resolve({ how, seen, transports, text: sub.text });
    const sub = client.subscribeTask(taskId, {
      onEvent: (type, task) => {
        seen.push([type, task.version, task.status]);
        window.eventsSeen = seen.length;
      },
      onTransport: (name) => transports.push(name),
      onCompleted: () => end("completed"),
      onTimeout: () => end("timeout"),
      onError: (error) => end("error: " + error.message),
    }, options.subscribe ?? {});
  });
}"""


async def follow_in_page(
    page: Page, web: Proc, token_web: Proc | None = None, *, steps: int, **options: Any
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=(token_web or web).url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        task_id = await start_demo(http, steps=steps, stepSeconds=0.1)
    tokens = {"accessToken": user.access, "refreshToken": user.refresh}
    await page.goto(f"{web.url}/static/page.css")  # any page of the origin
    result: dict[str, Any] = await page.evaluate(FOLLOW, [task_id, tokens, options])
    return result


async def test_timeout_ends_the_subscription_with_on_timeout(page: Page, web: Proc, worker: Proc):
    result = await follow_in_page(page, web, steps=30, subscribe={"timeout": 400})
    assert result["how"] == "timeout"
    assert all(status != "completed" for _, _, status in result["seen"])


async def test_with_neither_eventsource_nor_websocket_it_polls(page: Page, web: Proc, worker: Proc):
    await page.add_init_script("delete window.EventSource; delete window.WebSocket")
    result = await follow_in_page(page, web, steps=5, client={"pollInterval": 200})
    assert result["how"] == "completed" and result["transports"] == ["poll"]


async def test_a_websocket_that_cannot_connect_falls_back_to_polling_after_max_retries(
    page: Page, web: Proc, worker: Proc
):
    await page.add_init_script(
        "delete window.EventSource;"
        "window.WebSocket = class extends WebSocket { constructor(url) { super(url.toString()"
        ".replace('/api/v1/ws', '/nowhere')); } }"
    )
    options = {"maxRetries": 2, "retryDelay": 50, "pollInterval": 200}
    result = await follow_in_page(page, web, steps=10, client=options)
    assert result["how"] == "completed" and result["transports"] == ["ws", "poll"]


async def test_tokens_that_expire_mid_task_are_refreshed_and_nothing_is_missed(
    page: Page, private: Callable[..., Proc]
):
    web = private("web", TASKSTREAM_ACCESS_TOKEN_SECONDS="1")
    private("worker")
    result = await follow_in_page(page, web, steps=30, client={"transport": "sse"})
    assert result["how"] == "completed"
    versions = [version for _, version, _ in result["seen"]]
    assert versions == list(range(versions[0], versions[0] + len(versions)))


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_logout_elsewhere_ends_the_subscription_with_token_revoked(
    page: Page, web: Proc, worker: Proc, transport: str
):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        task_id = await start_demo(http, steps=300, stepSeconds=0.1)
        tokens = {"accessToken": user.access, "refreshToken": user.refresh}
        await page.goto(f"{web.url}/static/page.css")  # any page of the origin
        options = {"client": {"transport": transport}}
        following = asyncio.create_task(page.evaluate(FOLLOW, [task_id, tokens, options]))
        await page.wait_for_function("() => window.eventsSeen > 0", timeout=WAIT * 1000)
        await http.post("/api/v1/auth/logout", json={"refreshToken": user.refresh})
        result = await asyncio.wait_for(following, WAIT)
        assert result["how"] == "error: TOKEN_REVOKED: the session has ended; sign in again"
        await cancel_as_owner(http, user, task_id)


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_full_server_is_asked_again_no_sooner_than_its_retry_after(
    page: Page, private: Callable[..., Proc], store: TaskStore, transport: str
):
    web = private("web", TASKSTREAM_MAX_STREAMS="1")
    private("worker")
    tickets: list[tuple[float, int, str | None]] = []  # (when asked, ms; status; Retry-After)

    def on_response(response: Any) -> None:
        if response.url.endswith("/api/v1/stream-tickets"):
            asked = response.request.timing["startTime"]
            tickets.append((asked, response.status, response.headers.get("retry-after")))

    page.on("response", on_response)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        task_id = await start_demo(http, steps=5, stepSeconds=0.1)
        holder = (await store.create("demo", owner=user.user_id)).id  # pending: never ends
        tokens = {"accessToken": user.access, "refreshToken": user.refresh}
        await page.goto(f"{web.url}/static/page.css")
        # without Retry-After, a retry delay of 10 ms would ask again at once, many times
        options = {"client": {"transport": transport, "retryDelay": 10, "maxRetries": 50}}
        async with SseStream(http, f"/api/v1/tasks/{holder}/events"):  # the only place
            following = asyncio.create_task(page.evaluate(FOLLOW, [task_id, tokens, options]))
            async with asyncio.timeout(WAIT):
                while len(tickets) < 2:
                    await asyncio.sleep(0.05)
        result = await asyncio.wait_for(following, WAIT)
    assert result["how"] == "completed"
    refused = [t for t in tickets if t[1] == 503]
    assert len(refused) >= 2 and tickets[-1][1] == 201
    for (asked, _, wait), (again, _, _) in zip(tickets, tickets[1:], strict=False):
        assert wait is not None and again - asked >= int(wait) * 1000 - 50, tickets
