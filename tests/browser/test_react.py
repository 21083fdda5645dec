"""The React bindings (`/static/js/taskstream-react.js`) in Chromium, with React 18 from npm
(its UMD builds, served on the app's origin with an import map for "react"): `useTask`
and `<TaskProgress>` follow tasks to their end over one shared connection, let it go when
they unmount, survive StrictMode's double mount, cancel, time out, and follow again after
the client gave up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Route

from tests.support import WAIT, Account, Proc, signup, start_demo

NPM = Path(__file__).parent / "js" / "node_modules"
PAGE = """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<script type="importmap">{"imports": {"react": "/react-test/react.mjs"}}</script>
<script src="/react-test/react.js"></script><script src="/react-test/react-dom.js"></script>
</head><body><div id="root"></div></body></html>"""
# "react" as an ES module: the UMD build's global, re-exported
SHIM = (
    "const R = window.React; export default R; export const {"
    + ", ".join(
        [
            "createContext",
            "createElement",
            "useCallback",
            "useContext",
            "useEffect",
            "useState",
            "StrictMode",
        ]  # fmt: skip
    )
    + "} = R;"
)
# every EventSource and WebSocket the page makes, counted
COUNT = """window.opened = []; for (const name of ["EventSource", "WebSocket"]) {
  const Real = window[name];
  window[name] = class extends Real {
    constructor(...args) { super(...args); window.opened.push(this); }
  };
}"""

# Runs in the page: mount `spec.items` (task ids, each a <TaskProgress> or a bare useTask)
# under one client; resolves once mounted. window.app holds what the tests look at.
MOUNT = """async ([tokens, spec]) => {
  const { TaskstreamClient, storedSession } = await import("/static/js/taskstream.js");
  const { TaskstreamProvider, TaskProgress, useTask } =
    await import("/static/js/taskstream-react.js");
  const h = React.createElement;
  const session = storedSession();
  session.save(tokens);
  const client = new TaskstreamClient({ auth: session, ...(spec.client ?? {}) });
  const states = {};
  function Bare({ id, at }) {
    const task = useTask(id, spec.options);
    states[at] = { status: task.status, progress: task.progress, text: task.text,
                   error: task.error?.message ?? null, retrying: task.retrying };
    return h("output", { "data-at": at, "data-status": task.status ?? "" }, task.progress);
  }
  const items = spec.items.map((id, at) => spec.bare
    ? h(Bare, { id, at, key: at })
    : h(TaskProgress, { taskId: id, key: at, language: spec.language ?? "ko",
                        options: spec.options }));
  let tree = h(TaskstreamProvider, { client }, ...items);
  if (spec.strict) tree = h(React.StrictMode, null, tree);
  const root = ReactDOM.createRoot(document.getElementById("root"));
  window.app = { client, states, unmount: () => root.unmount() };
  root.render(tree);
}"""


@pytest.fixture
async def user(web: Proc) -> Account:
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        return await signup(http)


async def demos(web: Proc, user: Account, count: int, **body: Any) -> list[str]:
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        return [await start_demo(http, **body) for _ in range(count)]


async def mount(page: Page, web: Proc, user: Account, **spec: Any) -> None:
    async def serve(route: Route) -> None:
        name = route.request.url.rpartition("/")[2]
        files = {"react.js": NPM / "react/umd/react.development.js",
                 "react-dom.js": NPM / "react-dom/umd/react-dom.development.js"}  # fmt: skip
        if name in files:
            await route.fulfill(body=files[name].read_text(), content_type="text/javascript")
        elif name == "react.mjs":
            await route.fulfill(body=SHIM, content_type="text/javascript")
        else:
            await route.fulfill(body=PAGE, content_type="text/html")

    await page.route(f"{web.url}/react-test/**", serve)
    await page.add_init_script(COUNT)
    await page.goto(f"{web.url}/react-test/index.html")
    tokens = {"accessToken": user.access, "refreshToken": user.refresh}
    await page.evaluate(MOUNT, [tokens, spec])


async def settled(page: Page, selector: str, count: int) -> None:
    """Until `count` elements match `selector` (every wait bounded)."""
    await page.wait_for_function(
        f"() => document.querySelectorAll({selector!r}).length === {count}", timeout=WAIT * 1000
    )


async def test_many_components_follow_their_tasks_to_the_end_over_one_connection(
    page: Page, web: Proc, worker: Proc, user: Account
):
    ids = await demos(web, user, 3, steps=6, stepSeconds=0.1)
    await mount(page, web, user, items=[*ids, ids[0]])  # two components show the first task
    await settled(page, ".ts-progress[data-status=completed]", 4)
    bars = page.locator("[role=progressbar]")
    assert (
        await bars.evaluate_all("bars => bars.map(b => b.getAttribute('aria-valuenow'))")
        == ["100"] * 4
    )
    assert await page.locator(".ts-progress-status").all_inner_texts() == ["완료"] * 4
    assert await page.locator(".ts-progress-cancel").count() == 0  # nothing left to cancel
    assert await page.evaluate("window.opened.length") == 1  # one EventSource for all four


async def test_a_component_unmounted_mid_task_gives_the_connection_back(
    page: Page, web: Proc, worker: Proc, user: Account
):
    [long] = await demos(web, user, 1, steps=100, stepSeconds=0.1)
    await mount(page, web, user, items=[long, long])
    await page.wait_for_function(
        "() => [...document.querySelectorAll('[role=progressbar]')]"
        ".every(b => Number(b.getAttribute('aria-valuenow')) > 0)",
        timeout=WAIT * 1000,
    )
    await page.evaluate("window.app.unmount()")
    gone = await page.evaluate(
        "() => ({ subs: window.app.client.subs.size, transport: window.app.client.transport,"
        " states: window.opened.map(c => c.readyState), root: document.getElementById('root')"
        ".childElementCount })"
    )
    assert gone == {"subs": 0, "transport": None, "states": [2], "root": 0}  # 2: CLOSED
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        await http.post(f"/api/v1/tasks/{long}/cancel")


async def test_strict_mode_mounts_twice_and_still_opens_one_connection(
    page: Page, web: Proc, worker: Proc, user: Account
):
    ids = await demos(web, user, 2, steps=6, stepSeconds=0.1)
    await mount(page, web, user, items=ids, strict=True, bare=True)
    await settled(page, "output[data-status=completed]", 2)
    assert await page.evaluate("window.opened.length") == 1
    states = await page.evaluate("window.app.states")
    assert [states[str(i)]["progress"] for i in range(2)] == [100, 100]


@pytest.mark.parametrize(
    ("language", "words"), [("ko", ("취소", "취소됨")), ("en", ("Cancel", "Cancelled"))]
)
async def test_the_cancel_button_cancels_the_task_and_says_so_in_its_language(
    page: Page, web: Proc, worker: Proc, user: Account, language: str, words: tuple[str, str]
):
    cancel, cancelled = words
    [long] = await demos(web, user, 1, steps=100, stepSeconds=0.1)
    await mount(page, web, user, items=[long], language=language)
    await page.wait_for_function(
        "() => Number(document.querySelector('[role=progressbar]')"
        ".getAttribute('aria-valuenow')) > 0",
        timeout=WAIT * 1000,
    )
    await page.get_by_role("button", name=cancel).click()
    await settled(page, ".ts-progress[data-status=cancelled]", 1)
    assert await page.locator(".ts-progress-status").inner_text() == cancelled
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        status = (await http.get(f"/api/v1/tasks/{long}/status")).json()["data"]["status"]
    assert status == "cancelled"


async def test_a_timeout_stops_following_and_says_so(
    page: Page, web: Proc, worker: Proc, user: Account
):
    [long] = await demos(web, user, 1, steps=100, stepSeconds=0.1)
    await mount(page, web, user, items=[long], options={"timeout": 500})
    alert = page.get_by_role("alert")
    await alert.wait_for(timeout=WAIT * 1000)
    assert await alert.inner_text() == "시간 안에 끝나지 않았습니다"
    assert await page.evaluate("window.app.client.subs.size") == 0
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT, headers=user.headers) as http:
        await http.post(f"/api/v1/tasks/{long}/cancel")


@pytest.mark.parametrize(("max_retries", "ends"), [(2, "completed"), (0, "error")])
async def test_after_the_client_gives_up_the_hook_follows_again_max_retries_times(
    page: Page, web: Proc, worker: Proc, user: Account, max_retries: int, ends: str
):
    refused = 0

    async def tickets(route: Route) -> None:  # the first two stream tickets are refused
        nonlocal refused
        if refused < 2:
            refused += 1
            await route.fulfill(status=503, body="{}", content_type="application/json")
        else:
            await route.continue_()

    await page.route(f"{web.url}/api/v1/stream-tickets", tickets)
    [task] = await demos(web, user, 1, steps=4, stepSeconds=0.1)
    options = {"maxRetries": max_retries, "retryDelay": 50}
    client = {"transport": "sse", "maxRetries": 0}  # the client gives up at the first failure
    await mount(page, web, user, items=[task], bare=True, options=options, client=client)
    if ends == "completed":
        await settled(page, "output[data-status=completed]", 1)
    else:
        await page.wait_for_function("() => window.app.states[0]?.error", timeout=WAIT * 1000)
        error = await page.evaluate("window.app.states[0].error")
        assert error.startswith("could not connect over sse")
    assert refused == min(2, max_retries + 1)
