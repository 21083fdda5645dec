"""The demo page and its client library in Chromium: every transport, the fallbacks, a
server that goes away mid-task, cancel, many tasks on one connection, reload, export."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import screenshot
from tests.support import WAIT, Proc, own_metric

TIMEOUT_MS = WAIT * 1000
ENDED = "completed, failed, cancelled"


async def open_page(page: Page, web: Proc, **query: Any) -> None:
    """The page, signed in as a new guest."""
    params = "&".join(f"{k}={v}" for k, v in query.items())
    await page.goto(f"{web.url}/?{params}")
    await page.get_by_role("button", name="게스트로 시작").click()
    await expect(page.locator("#wizard")).to_be_visible()


async def versions(page: Page) -> list[int]:
    found = await page.locator("#events li").evaluate_all(
        "items => items.map(i => +i.dataset.version)"
    )
    return [int(v) for v in found]


async def finished(page: Page, status: str = "completed") -> None:
    await expect(page.locator("#status")).to_have_attribute(
        "data-status", status, timeout=TIMEOUT_MS
    )


@pytest.mark.parametrize("transport", ["sse", "ws", "poll"])
async def test_a_task_is_followed_to_completion_on_each_transport(
    page: Page, web: Proc, worker: Proc, transport: str
):
    await open_page(page, web, transport=transport, steps=8, stepSeconds=0.05, pollInterval=200)
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await finished(page)
    await expect(page.locator("#transport-now")).to_have_text(transport)
    await expect(page.locator("#bar")).to_have_attribute("value", "100")
    seen = await versions(page)
    if transport != "poll":  # pushed: every event, one version after another
        assert seen == list(range(seen[0], seen[0] + len(seen)))
    await expect(page.locator("#toasts")).to_contain_text("완료")


async def test_without_eventsource_the_page_falls_back_to_the_websocket(
    page: Page, web: Proc, worker: Proc
):
    await page.add_init_script("delete window.EventSource")
    await open_page(page, web, steps=5, stepSeconds=0.05)
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await finished(page)
    await expect(page.locator("#transport-now")).to_have_text("ws")


async def test_a_server_that_goes_away_mid_task_and_comes_back_loses_no_stage(
    page: Page, private: Callable[..., Proc]
):
    slow = {"TASKSTREAM_TIMEOUT_DEMO": "60"}
    web = private("web", **slow)
    private("worker", **slow)
    await open_page(page, web, transport="sse", steps=50, stepSeconds=0.1, retryDelay=200)
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(page.locator("#events li").nth(4)).to_be_attached(timeout=TIMEOUT_MS)
    web.stop(signal.SIGKILL)  # gone without a word
    web.start()  # back on the same port
    await finished(page)
    seen = await versions(page)
    assert seen == list(range(seen[0], seen[0] + len(seen)))  # not one event missed
    stages = await page.locator("#events li").evaluate_all(
        "items => items.map(i => i.dataset.stage)"
    )
    assert {"analyzing", "generating", "formatting"} <= set(stages)


async def test_cancel_from_the_page_ends_the_task(page: Page, web: Proc, worker: Proc):
    await open_page(page, web, steps=200, stepSeconds=0.05)
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(page.locator("#status")).to_have_attribute(
        "data-status", "processing", timeout=TIMEOUT_MS
    )
    await page.get_by_role("button", name="취소").click()
    await finished(page, "cancelled")
    await expect(page.locator("#toasts")).to_contain_text("취소")
    await expect(page.get_by_role("button", name="취소")).to_be_disabled()


async def test_eight_tasks_progress_together_over_one_connection(
    page: Page, private: Callable[..., Proc]
):
    web = private("web")
    private("worker")
    await open_page(page, web, transport="sse", steps=30, stepSeconds=0.1)
    await page.get_by_role("button", name="데모 작업 8개").click()
    rows = page.locator("#tasks li")
    await expect(rows).to_have_count(8, timeout=TIMEOUT_MS)
    await expect(page.locator("#tasks li[data-status=processing]").first).to_be_visible(
        timeout=TIMEOUT_MS
    )
    async with httpx.AsyncClient(base_url=web.url) as http:
        metrics = (await http.get("/metrics")).text
    assert web.process is not None
    assert own_metric(metrics, web.process.pid, "taskstream_open_streams", transport="sse") == 1
    await expect(page.locator("#tasks li[data-status=completed]")).to_have_count(
        8, timeout=TIMEOUT_MS
    )
    updates = await rows.evaluate_all("items => items.map(i => +i.dataset.updates)")
    assert all(n >= 3 for n in updates), updates  # each moved along, not just started and ended


async def test_a_reload_mid_generation_reattaches_with_the_text_so_far_then_export(
    page: Page, web: Proc, worker: Proc
):
    await open_page(page, web)
    await page.get_by_role("button", name="계획서 생성").click()
    preview = page.locator("#preview")
    await expect(preview).to_contain_text("동네빵집", timeout=TIMEOUT_MS)
    await screenshot(page, "page-generating")
    before = await preview.text_content() or ""
    await page.reload()
    await expect(preview).to_contain_text(before[:40], timeout=TIMEOUT_MS)  # the text so far
    await finished(page)
    await expect(preview).to_contain_text("마일스톤")
    await expect(page.locator("#after")).to_be_visible()

    async with page.expect_download(timeout=TIMEOUT_MS) as downloading:
        await page.get_by_role("button", name="Markdown 내보내기").click()
    download = await downloading.value
    assert download.suggested_filename == "동네빵집 사업계획서.md"
    path = await download.path()
    assert path is not None and path.read_text(encoding="utf-8").startswith("# 동네빵집")
    await expect(page.locator("#download")).to_have_attribute("value", "100")

    await page.get_by_role("button", name="평가받기").click()
    await expect(page.locator("#scores meter")).to_have_count(5, timeout=TIMEOUT_MS)
    scores = page.locator("#scores")
    await expect(scores).to_contain_text("재무 건전성")  # the criteria in Korean, not their keys
    await expect(scores).not_to_contain_text("financial_soundness")
    await page.get_by_role("button", name="재무 시뮬레이션").click()
    await expect(page.locator("#chart [data-band]")).to_have_count(2, timeout=TIMEOUT_MS)
    await screenshot(page, "page-after")


async def test_the_transport_switch_changes_how_the_next_task_is_followed(
    page: Page, web: Proc, worker: Proc
):
    await open_page(page, web, steps=5, stepSeconds=0.05, pollInterval=200)
    await page.get_by_text("개발자 도구").click()  # the switch is a developer's control
    await page.get_by_label("폴링").check()
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await finished(page)
    await expect(page.locator("#transport-now")).to_have_text("poll")
    await page.get_by_label("WebSocket").check()
    await page.get_by_role("button", name="데모 작업", exact=True).click()
    await finished(page)
    await expect(page.locator("#transport-now")).to_have_text("ws")


async def test_the_pages_that_mails_and_the_readme_link_to_run_under_the_policy(
    page: Page, web: Proc
):
    await page.goto(f"{web.url}/verify-email?token=not-a-token")
    await expect(page.locator("#result")).to_have_attribute(
        "data-outcome", "INVALID_OR_EXPIRED_TOKEN", timeout=TIMEOUT_MS
    )
    await expect(page.locator("#result")).to_have_text(
        "확인하지 못했습니다: 링크가 만료되었거나 이미 쓰였습니다"
    )
    await page.goto(f"{web.url}/docs")
    await expect(page.locator("#operations details").first).to_be_visible(timeout=TIMEOUT_MS)
    await page.goto(f"{web.url}/reset-password?token=not-a-token")
    await page.locator("#password").fill("a new password")
    await page.get_by_role("button", name="재설정").click()
    await expect(page.locator("#result")).to_have_text(
        "바꾸지 못했습니다: 링크가 만료되었거나 이미 쓰였습니다. "
        "로그인 화면에서 재설정 메일을 다시 받아 주세요",
        timeout=TIMEOUT_MS,
    )
    await expect(page.get_by_role("link", name="로그인하러 가기")).to_be_visible()
