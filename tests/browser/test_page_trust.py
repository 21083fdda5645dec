"""The demo page as a founder meets it, on a desktop (1280×800) and a phone (390×844): the
running task comes into view, its text follows itself, a double click starts one task, a
failed action and a lost connection are said in Korean, the status is announced once per
stage, Korean wraps between words, and the developer's controls stay out of the way."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.browser.conftest import screenshot
from tests.browser.test_page import TIMEOUT_MS, finished, open_page
from tests.server.test_auth import RESET, link_in
from tests.smtp import MailServer
from tests.support import WAIT, Proc, signup

VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}


@pytest.fixture(params=list(VIEWPORTS))
async def sized(page: Page, request: pytest.FixtureRequest) -> Page:
    await page.set_viewport_size(VIEWPORTS[request.param])
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    page.uncaught = uncaught  # type: ignore[attr-defined]
    return page


async def shot(page: Page, name: str) -> None:
    """The page as it looks now, for docs/: named by its viewport."""
    size = page.viewport_size or VIEWPORTS["desktop"]
    await screenshot(page, f"page-{name}-{size['width']}x{size['height']}")


async def my_tasks(page: Page) -> list[dict[str, str]]:
    """The signed-in user's tasks, asked by the page with its own token."""
    tasks: list[dict[str, str]] = await page.evaluate(
        """async () => {
          const { accessToken } = JSON.parse(sessionStorage.getItem("taskstream.tokens"));
          const headers = { Authorization: `Bearer ${accessToken}` };
          const answer = await fetch("/api/v1/tasks", { headers });
          return (await answer.json()).data.tasks;
        }"""
    )
    return tasks


async def test_a_plan_started_comes_into_view_and_its_text_follows_itself(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web)
    await sized.get_by_role("button", name="계획서 생성").click()
    await expect(sized.locator("#progress")).to_be_in_viewport()
    assert await sized.evaluate("document.activeElement.id") == "progress-title"
    await finished(sized)
    preview = sized.locator("#preview")
    overflow = await preview.evaluate("p => p.scrollHeight - p.clientHeight")
    assert overflow > 0  # the plan is longer than its box: following it means scrolling
    assert await preview.evaluate("p => p.scrollHeight - p.clientHeight - p.scrollTop") <= 2
    # a Korean document: headings without the sections' keys, no Markdown marks
    await expect(sized.locator("#preview-title")).to_have_text("완성된 계획서")
    await expect(preview.locator("h3").first).to_have_text("요약")
    await expect(preview.locator("h3", has_text="시장 분석")).to_have_count(1)
    text = await preview.inner_text()
    assert "[market]" not in text and "##" not in text
    assert not any(mark in text for mark in ("을(를)", "이(가)", "은(는)", "와(과)"))  # particles
    assert sized.uncaught == []  # type: ignore[attr-defined]
    await shot(sized, "plan")


async def test_a_double_click_starts_one_plan_and_the_button_says_it_is_busy(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web)
    generate = sized.get_by_role("button", name="계획서 생성")
    await generate.dblclick()
    await expect(generate).to_be_disabled()  # while its plan is written
    await finished(sized)
    await expect(generate).to_be_enabled()
    plans = [t for t in await my_tasks(sized) if t["kind"] == "business_plan"]
    assert len(plans) == 1


async def test_a_failed_action_is_said_in_korean_and_nothing_goes_uncaught(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web)
    await sized.route("**/api/v1/demo/tasks", lambda route: route.abort())
    await sized.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(sized.locator(".toast.bad")).to_have_text(
        "데모 작업을 시작하지 못했습니다: 서버에 연결할 수 없습니다. 인터넷 연결을 확인해 주세요"
    )
    await expect(sized.get_by_role("button", name="데모 작업", exact=True)).to_be_enabled()
    assert sized.uncaught == []  # type: ignore[attr-defined]


async def test_a_lost_connection_shows_a_banner_until_it_is_back(
    sized: Page, private: Callable[..., Proc]
):
    web = private("web", TASKSTREAM_TIMEOUT_DEMO="60")
    private("worker", TASKSTREAM_TIMEOUT_DEMO="60")
    await open_page(sized, web, transport="sse", steps=60, stepSeconds=0.1, retryDelay=200)
    banner = sized.locator("#connection")
    await sized.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(sized.locator("#events li").nth(2)).to_be_attached(timeout=TIMEOUT_MS)
    await expect(banner).to_be_hidden()
    web.stop(signal.SIGKILL)  # the server gone without a word
    await expect(banner).to_be_visible(timeout=TIMEOUT_MS)
    await expect(banner.locator("#connection-text")).to_have_text(
        "연결이 끊겼습니다. 다시 연결하는 중…"
    )
    await expect(banner.get_by_role("button")).to_be_hidden()
    web.start()  # back on the same port
    await expect(banner).to_be_hidden(timeout=TIMEOUT_MS)
    await finished(sized)


async def test_when_the_client_gives_up_the_status_is_unknown_until_it_reconnects(
    sized: Page, private: Callable[..., Proc]
):
    web = private("web", TASKSTREAM_TIMEOUT_DEMO="60")
    private("worker", TASKSTREAM_TIMEOUT_DEMO="60")
    await open_page(
        sized, web, transport="sse", steps=60, stepSeconds=0.1, retryDelay=100, maxRetries=1
    )
    await sized.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(sized.locator("#events li").nth(2)).to_be_attached(timeout=TIMEOUT_MS)
    web.stop(signal.SIGKILL)
    await finished(sized, "unknown")  # not the last percent, as if it were current
    await expect(sized.locator("#status")).to_have_text("알 수 없음")
    await expect(sized.locator("#connection")).to_contain_text("진행 상황을 알 수 없습니다")
    # the task is kept: a reload would follow it again, and so does the button
    assert await sized.evaluate("sessionStorage.getItem('taskstream.current')") is not None
    await shot(sized, "connection-lost")
    web.start()
    await sized.get_by_role("button", name="다시 연결").click()
    await finished(sized)
    await expect(sized.locator("#connection")).to_be_hidden()
    assert sized.uncaught == []  # type: ignore[attr-defined]


async def test_a_session_ended_elsewhere_asks_to_sign_in_again(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web, transport="sse", steps=60, stepSeconds=0.1)
    await sized.get_by_role("button", name="데모 작업", exact=True).click()
    await expect(sized.locator("#events li").nth(1)).to_be_attached(timeout=TIMEOUT_MS)
    tokens = await sized.evaluate("JSON.parse(sessionStorage.getItem('taskstream.tokens'))")
    async with httpx.AsyncClient(base_url=web.url) as http:  # logged out in another tab
        answer = await http.post(
            "/api/v1/auth/logout",
            json={"refreshToken": tokens["refreshToken"]},
            headers={"Authorization": f"Bearer {tokens['accessToken']}"},
        )
        assert answer.status_code == 200, answer.text
    await expect(sized.locator(".toast.bad")).to_have_text(
        "로그인이 끝났습니다. 다시 로그인해 주세요", timeout=TIMEOUT_MS
    )
    await expect(sized.locator("#signin")).to_be_visible()
    await expect(sized.locator("#wizard")).to_be_hidden()
    assert await sized.evaluate("sessionStorage.getItem('taskstream.tokens')") is None


async def test_the_status_is_announced_once_per_stage_not_at_every_event(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web, transport="sse", steps=30, stepSeconds=0.05)
    await sized.evaluate(
        """() => { window.said = [];
          const live = [...document.querySelectorAll('#progress [aria-live]')];
          new MutationObserver(() => window.said.push(live.map(n => n.textContent).join('|')))
            .observe(document.getElementById('progress'), { subtree: true, childList: true,
                                                           characterData: true }); }"""
    )
    await sized.get_by_role("button", name="데모 작업", exact=True).click()
    await finished(sized)
    events = await sized.locator("#events li").count()
    said = await sized.evaluate("[...new Set(window.said)]")
    assert events >= 10 and len(said) <= 6, said  # pending, three stages, completed
    assert said[-1] == "완료"


async def test_korean_wraps_between_words_and_developer_controls_wait_behind_a_toggle(
    sized: Page, web: Proc
):
    await open_page(sized, web)
    assert await sized.evaluate("getComputedStyle(document.body).wordBreak") == "keep-all"
    radio = sized.get_by_label("폴링")
    await expect(radio).to_be_hidden()
    await sized.get_by_text("개발자 도구").click()
    await expect(radio).to_be_visible()


async def test_the_site_has_an_icon(web: Proc):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        icon = await http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")


async def test_enter_in_the_signup_form_signs_up_and_the_page_says_who_is_signed_in(
    sized: Page, web: Proc
):
    await sized.goto(web.url)
    await sized.get_by_role("button", name="가입", exact=True).click()
    await sized.get_by_label("이름", exact=True).fill("김민지")
    await sized.get_by_label("이메일").fill(f"minji-{uuid.uuid4().hex[:8]}@example.com")
    await sized.get_by_label("비밀번호 (8자 이상)").fill("correct horse")
    await sized.get_by_label("비밀번호 (8자 이상)").press("Enter")
    await expect(sized.locator("#wizard")).to_be_visible()
    await expect(sized.locator("#who-name")).to_have_text("김민지 님")
    await sized.reload()  # who it is, still, after a reload
    await expect(sized.locator("#who-name")).to_have_text("김민지 님")
    await sized.get_by_role("button", name="로그아웃").click()
    await expect(sized.locator("#account")).to_be_visible()
    await expect(sized.locator("#who")).to_be_hidden()


async def test_a_refused_sign_up_or_login_says_why_under_the_field(sized: Page, web: Proc):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        taken = await signup(http)
    await sized.goto(web.url)
    password = sized.get_by_label("비밀번호 (8자 이상)")
    await sized.get_by_role("button", name="가입", exact=True).click()
    await sized.get_by_label("이름", exact=True).fill("김민지")
    await sized.get_by_label("이메일").fill(f"short-{uuid.uuid4().hex[:8]}@example.com")
    await password.fill("short")
    await password.press("Enter")
    await expect(sized.locator("#password-error")).to_have_text("비밀번호는 8자 이상이어야 합니다")
    await expect(password).to_have_attribute("aria-invalid", "true")
    await sized.get_by_label("이메일").fill(taken.email)
    await password.fill("long enough password")
    await password.press("Enter")
    await expect(sized.locator("#email-error")).to_have_text(
        "이미 가입된 이메일입니다. 로그인해 주세요"
    )
    await expect(sized.locator("#password-error")).to_have_count(0)  # the old one is gone
    await sized.get_by_role("button", name="로그인", exact=True).click()
    await password.fill("not the password")
    await password.press("Enter")
    await expect(sized.locator("#password-error")).to_have_text(
        "이메일 또는 비밀번호가 맞지 않습니다"
    )
    await expect(sized.locator(".toast")).to_have_count(0)  # said where it belongs
    await shot(sized, "signin-errors")


async def test_a_forgotten_password_is_reset_by_mail_and_the_new_one_signs_in(
    sized: Page, web: Proc, worker: Proc, smtp: MailServer
):
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
    await sized.goto(web.url)
    forgot = sized.get_by_role("button", name="비밀번호를 잊으셨나요?")
    await forgot.click()  # no address yet: said under the field, nothing sent
    await expect(sized.locator("#email-error")).to_have_text("올바른 이메일 주소를 입력해 주세요")
    await sized.get_by_label("이메일").fill(user.email)
    await forgot.click()
    await expect(sized.locator(".toast")).to_have_text(
        f"가입된 주소라면 {user.email} 앞으로 재설정 메일을 보냈습니다. 메일함을 확인해 주세요"
    )
    await expect(sized.locator("#email-error")).to_have_count(0)
    path, token = link_in(await smtp.mail_for(user.email, about=RESET))
    assert path == "/reset-password"
    await sized.goto(f"{web.url}{path}?token={token}")
    new = sized.get_by_label("새 비밀번호 (8자 이상)")
    await new.fill("short")
    await sized.get_by_role("button", name="재설정").click()
    await expect(sized.locator("#result")).to_have_text("비밀번호는 8자 이상이어야 합니다")
    await expect(new).to_have_attribute("aria-invalid", "true")
    await new.fill("a brand new password")
    await sized.get_by_role("button", name="재설정").click()
    await expect(sized.locator("#result")).to_have_text(
        "비밀번호가 바뀌었습니다. 새 비밀번호로 로그인해 주세요.", timeout=TIMEOUT_MS
    )
    await sized.get_by_role("link", name="로그인하러 가기").click()
    await sized.get_by_label("이메일").fill(user.email)
    await sized.get_by_label("비밀번호 (8자 이상)").fill("a brand new password")
    await sized.get_by_role("button", name="로그인", exact=True).last.click()
    await expect(sized.locator("#wizard")).to_be_visible()
    await expect(sized.locator("#who-name")).to_have_text("김민지 님")  # signup()'s name


async def test_an_unconfirmed_address_is_shown_and_its_mail_can_be_sent_again(
    sized: Page, web: Proc, worker: Proc, smtp: MailServer
):
    email = f"founder-{uuid.uuid4().hex[:8]}@example.com"
    await sized.goto(web.url)
    await sized.get_by_role("button", name="가입", exact=True).click()
    await sized.get_by_label("이름", exact=True).fill("김민지")
    await sized.get_by_label("이메일").fill(email)
    await sized.get_by_label("비밀번호 (8자 이상)").fill("long enough password")
    await sized.get_by_label("비밀번호 (8자 이상)").press("Enter")
    unverified = sized.locator("#unverified")
    await expect(unverified).to_be_visible()
    await expect(unverified).to_contain_text("이메일 미확인")
    await sized.get_by_role("button", name="인증 메일 다시 보내기").click()
    await expect(sized.locator(".toast")).to_have_text(
        f"{email} 앞으로 인증 메일을 다시 보냈습니다. 메일함을 확인해 주세요"
    )
    path, token = link_in(await smtp.mail_for(email, count=2, about="이메일 주소를 확인해 주세요"))
    assert path == "/verify-email"
    await sized.goto(f"{web.url}{path}?token={token}")
    await expect(sized.locator("#result")).to_have_text(f"{email} 주소가 확인되었습니다.")
    await sized.get_by_role("link", name="Taskstream으로 가기").click()
    await expect(sized.locator("#who-name")).to_have_text("김민지 님")
    await expect(unverified).to_be_hidden()  # confirmed: nothing to ask any more


async def test_a_guest_is_not_asked_to_confirm_a_made_up_address(sized: Page, web: Proc):
    await open_page(sized, web)
    await expect(sized.locator("#who-name")).to_have_text("게스트 님")
    await expect(sized.locator("#unverified")).to_be_attached()  # there, for others
    await expect(sized.locator("#unverified")).to_be_hidden()
    await sized.reload()  # still a guest after a reload
    await expect(sized.locator("#who-name")).to_have_text("게스트 님")
    await expect(sized.locator("#unverified")).to_be_hidden()


async def test_the_apis_refusals_and_a_tasks_failure_are_said_in_korean(
    sized: Page, private: Callable[..., Proc]
):
    # no worker yet: the sign-up's mail and the first demo wait, in flight, at the limit
    web = private("web", TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED="2")
    await open_page(sized, web, steps=5, stepSeconds=0.1, failAtStep=3)
    demo = sized.get_by_role("button", name="데모 작업", exact=True)
    await demo.click()
    await expect(sized.locator("#status")).to_have_text("대기")
    await demo.click()
    too_many = "진행 중인 작업이 너무 많습니다. 하나가 끝난 뒤 다시 해 주세요"
    await expect(sized.locator(".toast.bad")).to_have_text(
        f"데모 작업을 시작하지 못했습니다: {too_many}"
    )
    private("worker")
    await finished(sized, "failed")  # the first fails at its third step, as asked
    await expect(sized.locator(".toast.bad", has_text="실패:")).to_have_text(
        "실패: 데모 작업이 요청한 대로 실패했습니다"
    )
    assert sized.uncaught == []  # type: ignore[attr-defined]


async def test_a_refused_answer_in_the_wizard_says_why_under_it_and_starts_nothing(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web)
    name, problem = sized.get_by_label("사업 이름"), sized.get_by_label("해결할 문제")
    await name.fill("   ")  # blank once trimmed, as the API reads it
    await problem.fill("")
    generate = sized.get_by_role("button", name="계획서 생성")
    await generate.click()
    await expect(sized.locator("#projectName-error")).to_have_text("이 항목을 채워 주세요")
    await expect(sized.locator("#problem-error")).to_have_text("이 항목을 채워 주세요")
    await expect(problem).to_have_attribute("aria-invalid", "true")
    await expect(name).to_be_focused()
    await expect(sized.locator(".toast.bad")).to_contain_text("표시한 항목을 확인해 주세요")
    await expect(generate).to_be_enabled()
    assert [t for t in await my_tasks(sized) if t["kind"] == "business_plan"] == []
    await shot(sized, "wizard-errors")
    await name.fill("동네카페")
    await problem.fill("동네에 조용한 카페가 없다")
    await generate.click()
    await finished(sized)
    assert await sized.locator(".field-error").count() == 0  # mended: the notes are gone
    await expect(problem).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize("action", ["평가받기", "PDF 내보내기"])
async def test_a_side_task_shows_its_own_progress_while_it_runs(
    sized: Page, web: Proc, worker: Proc, action: str
):
    await open_page(sized, web)
    await sized.get_by_role("button", name="계획서 생성").click()
    await finished(sized)
    await sized.evaluate(
        """() => { window.sides = [];
          const side = document.getElementById('side');
          new MutationObserver(() => window.sides.push(
              { shown: !side.hidden, label: document.getElementById('side-label').textContent }))
            .observe(side, { attributes: true, subtree: true, childList: true,
                             characterData: true }); }"""
    )
    button = sized.get_by_role("button", name=action)
    if action == "평가받기":
        await button.click()
        scores = sized.locator("#scores")
        await expect(scores).to_contain_text("종합", timeout=TIMEOUT_MS)
        await expect(scores).to_contain_text("재무 건전성")  # criteria in Korean, not their keys
        assert "financial_soundness" not in await scores.inner_text()
        assert "GEMINI" not in await scores.inner_text()  # no note for developers
    else:
        async with sized.expect_download(timeout=TIMEOUT_MS) as download:
            await button.click()
        assert (await download.value).suggested_filename.endswith(".pdf")
    await expect(button).to_be_enabled()
    await expect(sized.locator("#side")).to_be_hidden()
    sides = await sized.evaluate("window.sides")
    label = "평가" if action == "평가받기" else "PDF 내보내기"
    assert any(s["shown"] and s["label"].startswith(f"{label} 진행 중") for s in sides), sides


async def test_the_wizards_answers_survive_a_reload(sized: Page, web: Proc):
    await open_page(sized, web)
    await sized.get_by_label("사업 이름").fill("동네카페")
    await sized.get_by_label("해결할 문제").fill("동네에 조용한 카페가 없다")
    await sized.reload()
    await expect(sized.get_by_label("사업 이름")).to_have_value("동네카페")
    await expect(sized.get_by_label("해결할 문제")).to_have_value("동네에 조용한 카페가 없다")


async def test_the_simulation_starts_from_the_plan_and_its_chart_has_axes_a_band_and_cards(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web)
    await sized.get_by_label("수익 모델").fill("월 구독료 1만 2천원, 첫 달 200명")
    await sized.get_by_label("필요 자금 (선택)").fill("5천만 원")
    await sized.get_by_role("button", name="계획서 생성").click()
    await finished(sized)
    await expect(sized.locator("#preview")).to_contain_text("필요 자금: 5천만 원")
    price = sized.get_by_label("단가 (원)")
    await expect(price).to_have_value("12000")  # from the plan's business model
    await expect(sized.get_by_label("초기 자금 (원)")).to_have_value("50000000")
    await price.fill("15000")
    # each amount also said in words under its field
    await expect(sized.locator("output[data-for=unitPrice]")).to_have_text("1만 5,000원")
    await expect(sized.locator("output[data-for=initialCash]")).to_have_text("5,000만원")
    async with sized.expect_request("**/financial/simulate") as asked:
        await sized.get_by_role("button", name="재무 시뮬레이션").click()
    body = (await asked.value).post_data_json
    assert (
        body is not None
        and body["revenue"]["unitPrice"] == 15000
        and body["revenue"]["monthlyGrowth"] == 0.05
    )
    chart = sized.locator("#chart")
    await expect(chart).to_be_visible(timeout=TIMEOUT_MS)
    assert await chart.locator("[data-band=p10-p90]").count() == 1
    assert await chart.locator("[data-axis=y]").count() >= 3
    assert await chart.locator("[data-axis=x]").count() >= 3
    await expect(chart).to_contain_text("개월")
    await expect(chart).to_contain_text("현금 잔고 (원)")
    names = await sized.locator("#cards dt").all_inner_texts()
    assert names == ["손익분기", "현금 소진 확률", "NPV (중앙값)", "IRR (연, 중앙값)"]
    assert all(await sized.locator("#cards dd").all_inner_texts())
    await expect(sized.locator("#side")).to_be_hidden()  # the side task's bar, gone once done
    # drawn at the figure's width: its labels are as large on a phone as on a desktop
    label = await chart.locator("[data-axis=y]").first.bounding_box()
    assert label is not None and label["height"] >= 14, label
    await shot(sized, "simulation")


async def test_a_refused_simulation_field_says_why_under_it(sized: Page, web: Proc, worker: Proc):
    await open_page(sized, web)
    await sized.get_by_role("button", name="계획서 생성").click()
    await finished(sized)
    months = sized.get_by_label("기간 (개월)")
    await months.fill("500")  # the API takes 1–120
    await sized.get_by_role("button", name="재무 시뮬레이션").click()
    await expect(sized.locator("#horizonMonths-error")).to_have_text(
        "120 이하의 값을 입력해 주세요"
    )
    await expect(months).to_have_attribute("aria-invalid", "true")
    await expect(sized.locator(".toast.bad")).to_contain_text("표시한 항목을 확인해 주세요")


async def test_my_tasks_lists_them_and_a_running_one_can_be_followed_again(
    sized: Page, web: Proc, worker: Proc
):
    await open_page(sized, web, steps=30, stepSeconds=0.1)
    demo = sized.get_by_role("button", name="데모 작업", exact=True)
    current = "JSON.parse(sessionStorage.getItem('taskstream.current')).taskId"
    await demo.click()
    await expect(demo).to_be_enabled()
    first = await sized.evaluate(current)
    await demo.click()
    await expect(demo).to_be_enabled()
    await expect(sized.locator("#writing")).to_be_hidden()  # a demo writes no text
    second = await sized.evaluate(current)
    assert second != first  # the page follows the second now
    row = sized.locator(f"#history-list li[data-task='{first}']")
    await expect(row).to_contain_text("데모 작업")
    await expect(sized.locator("#history-list li", has_text="데모 작업")).to_have_count(2)
    await expect(sized.locator("#history-list li", has_text="메일")).to_have_count(1)  # sign-up
    await row.get_by_role("button", name="이어 보기").click()
    assert await sized.evaluate(current) == first
    await finished(sized)
    await expect(row).to_contain_text("완료")  # the list follows the ends too
    # and the one the page left: its row follows it to its end on its own
    left = sized.locator(f"#history-list li[data-task='{second}']")
    await expect(left).to_have_attribute("data-status", "completed", timeout=TIMEOUT_MS)
    await expect(left).to_contain_text("완료 · 100%")
    await expect(left.get_by_role("button")).to_have_count(0)
    await shot(sized, "history")
