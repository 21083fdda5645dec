"""Accounts: signup with a mailed link, login, rotating refresh tokens, password reset."""

from __future__ import annotations

import asyncio
import re
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.smtp import MailServer
from tests.support import Proc, signup, wait_for_task

AUTH = "/api/v1/auth"
RESET = "비밀번호 재설정"  # the reset mail's subject; the verification mail may come after it
LINK = re.compile(r"http://app\.test(/[\w-]+)\?token=([\w-]+)")


@pytest.fixture(autouse=True)
def _mails_are_sent(worker: Proc) -> None:
    """The suite's worker sends this module's mails."""


def address() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def link_in(mail: EmailMessage) -> tuple[str, str]:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and found.group(0) in html.get_content()
    return found.group(1), found.group(2)


async def email_task(
    http: httpx.AsyncClient, task_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The e-mail task once it has ended, polled where the client plan polls it."""
    url = f"{AUTH}/email-tasks/{task_id}/status"
    ended = {"completed", "failed", "cancelled"}
    return await wait_for_task(
        http, task_id, lambda d: d["status"] in ended, url=url, headers=headers
    )


async def test_signup_answers_at_once_and_the_mailed_link_verifies_the_address(
    web: Proc, smtp: MailServer
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        email = address()
        response = await http.post(
            f"{AUTH}/signup", json={"email": email, "password": "correct horse", "name": "김민지"}
        )
        assert response.status_code == 201
        data = response.json()["data"]
        assert set(data) >= {"user", "tokens", "taskId", "status"}
        assert data["user"] | {"id": "…", "createdAt": "…"} == {
            "id": "…", "email": email, "name": "김민지", "language": "ko",
            "emailVerified": False, "createdAt": "…",
        }  # fmt: skip
        assert data["status"] == "pending"
        headers = {"Authorization": f"Bearer {data['tokens']['accessToken']}"}

        mail = await smtp.mail_for(email)
        assert mail["Subject"] == "[Taskstream] 이메일 주소를 확인해 주세요"
        text = mail.get_body(preferencelist=("plain",))
        assert text is not None and "김민지님" in text.get_content()
        path, token = link_in(mail)
        assert path == "/verify-email"
        status = await email_task(http, data["taskId"], headers)
        assert status["status"] == "completed" and status["kind"] == "email"

        page = await http.get(f"{path}?token={token}")  # the page the link opens
        assert page.status_code == 200 and 'src="/static/verify-email.js"' in page.text
        script = await http.get("/static/verify-email.js")  # which posts the token
        assert "/api/v1/auth/verify-email" in script.text
        verified = await http.post(f"{AUTH}/verify-email", json={"token": token})
        assert verified.status_code == 200 and verified.json()["data"]["emailVerified"] is True
        me = await http.get(f"{AUTH}/me", headers=headers)
        assert me.json()["data"]["emailVerified"] is True
        again = await http.post(f"{AUTH}/verify-email", json={"token": token})
        assert again.status_code == 400
        assert again.json()["error"]["code"] == "INVALID_OR_EXPIRED_TOKEN"
        resend = await http.post(f"{AUTH}/verify-email/resend", headers=headers)
        assert resend.status_code == 409 and resend.json()["error"]["code"] == "ALREADY_VERIFIED"


async def test_resend_mails_a_new_link_and_both_work_once(web: Proc, smtp: MailServer):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        first = link_in(await smtp.mail_for(user.email))[1]
        response = await http.post(f"{AUTH}/verify-email/resend", headers=user.headers)
        assert response.status_code == 202
        assert response.json()["data"]["links"]["status"].startswith(f"{AUTH}/email-tasks/")
        second = link_in(await smtp.mail_for(user.email, count=2))[1]
        assert first != second
        assert (await http.post(f"{AUTH}/verify-email", json={"token": second})).status_code == 200
        unauthenticated = await http.post(f"{AUTH}/verify-email/resend")
        assert unauthenticated.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "password": "correct horse", "name": "a"}, "email"),
        ({"email": "a@example.com", "password": "short", "name": "a"}, "password"),
        ({"email": "a@example.com", "password": "correct horse"}, "name"),
        ({"email": "a@example.com", "password": "correct horse", "name": "a", "x": 1}, "x"),
    ],
    ids=["bad-address", "short-password", "no-name", "unknown-field"],
)
async def test_a_bad_signup_is_422_with_the_field_and_creates_nothing(
    web: Proc, body: dict[str, Any], field: str
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        response = await http.post(f"{AUTH}/signup", json=body)
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
        if "@" in body["email"]:
            login = await http.post(
                f"{AUTH}/login", json={"email": body["email"], "password": "correct horse"}
            )
            assert login.status_code == 401


async def test_a_second_signup_with_the_same_address_in_any_case_is_409(web: Proc):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        again = await http.post(
            f"{AUTH}/signup",
            json={"email": user.email.upper(), "password": "another one", "name": "b"},
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "EMAIL_TAKEN"


async def test_login_takes_the_right_password_and_says_nothing_about_which_part_was_wrong(
    web: Proc,
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        good = await http.post(
            f"{AUTH}/login", json={"email": user.email, "password": user.password}
        )
        assert good.status_code == 200 and good.json()["data"]["user"]["id"] == user.user_id
        wrong = await http.post(
            f"{AUTH}/login", json={"email": user.email, "password": "wrong one"}
        )
        unknown = await http.post(
            f"{AUTH}/login", json={"email": address(), "password": "wrong one"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert wrong.json()["error"]["code"] == "INVALID_CREDENTIALS"
        assert wrong.headers["www-authenticate"] == "Bearer"


async def test_a_refresh_token_works_once_and_its_reuse_ends_the_whole_login(web: Proc):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        rotated = await http.post(f"{AUTH}/refresh", json={"refreshToken": user.refresh})
        assert rotated.status_code == 200
        tokens = rotated.json()["data"]["tokens"]
        assert tokens["refreshToken"] != user.refresh
        fresh = {"Authorization": f"Bearer {tokens['accessToken']}"}
        assert (await http.get(f"{AUTH}/me", headers=fresh)).status_code == 200

        reused = await http.post(f"{AUTH}/refresh", json={"refreshToken": user.refresh})
        assert reused.status_code == 401
        assert reused.json()["error"]["code"] == "REFRESH_TOKEN_REUSED"
        # the thief's and the owner's sessions of that login both end
        after = await http.post(f"{AUTH}/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert after.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"
        me = await http.get(f"{AUTH}/me", headers=fresh)
        assert me.status_code == 401 and me.json()["error"]["code"] == "TOKEN_REVOKED"
        # another login of the same user is untouched
        other = await http.post(
            f"{AUTH}/login", json={"email": user.email, "password": user.password}
        )
        assert other.status_code == 200


async def test_logout_ends_the_access_and_refresh_tokens(web: Proc):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        out = await http.post(
            f"{AUTH}/logout", json={"refreshToken": user.refresh}, headers=user.headers
        )
        assert out.status_code == 200 and out.json()["data"] == {"loggedOut": True}
        assert (await http.get(f"{AUTH}/me", headers=user.headers)).status_code == 401
        refresh = await http.post(f"{AUTH}/refresh", json={"refreshToken": user.refresh})
        assert refresh.status_code == 401


async def test_a_logout_cannot_end_another_users_login(web: Proc):
    async with httpx.AsyncClient(base_url=web.url) as http:
        victim, caller = await signup(http), await signup(http)
        out = await http.post(
            f"{AUTH}/logout", json={"refreshToken": victim.refresh}, headers=caller.headers
        )
        assert out.status_code == 200  # the caller's own login ends; the victim's does not
        assert (await http.get(f"{AUTH}/me", headers=victim.headers)).status_code == 200
        refresh = await http.post(f"{AUTH}/refresh", json={"refreshToken": victim.refresh})
        assert refresh.status_code == 200
        assert (await http.get(f"{AUTH}/me", headers=caller.headers)).status_code == 401


async def test_every_answer_carrying_credentials_is_no_store(web: Proc):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)  # (signup's own answer is checked below)
        answers = [
            await http.post(f"{AUTH}/signup", json={"email": f"x{user.email}",
                            "password": user.password, "name": "X"}),
            await http.post(f"{AUTH}/login", json={"email": user.email,
                            "password": user.password}),
            await http.post(f"{AUTH}/refresh", json={"refreshToken": user.refresh}),
            await http.post("/api/v1/stream-tickets", headers=user.headers),
        ]  # fmt: skip
    for answer in answers:
        assert answer.is_success, answer.text
        assert answer.headers["cache-control"] == "no-store", answer.url


@pytest.mark.parametrize(
    "token",
    ["-", "not.a.jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"],
    ids=["dash", "garbage", "forged"],
)
async def test_a_missing_or_bad_token_is_401(web: Proc, token: str):
    async with httpx.AsyncClient(base_url=web.url) as http:
        response = await http.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] in {"UNAUTHORIZED", "INVALID_TOKEN"}


async def test_a_reset_request_looks_the_same_whether_or_not_the_account_exists(
    web: Proc, smtp: MailServer
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        stranger = address()
        answers = [
            await http.post(f"{AUTH}/password/reset-request", json={"email": e})
            for e in (user.email, stranger)
        ]
        assert [a.status_code for a in answers] == [202, 202]

        def shape(response: httpx.Response) -> Any:
            data = response.json()["data"]
            return {**data, "taskId": "…", "links": sorted(data["links"])}

        assert shape(answers[0]) == shape(answers[1])
        assert set(answers[0].headers) == set(answers[1].headers)
        ends, results = [], []
        for answer in answers:
            task_id = answer.json()["data"]["taskId"]
            end = await email_task(http, task_id)  # no token: the id is the capability
            ends.append({k: v for k, v in end.items() if k not in {"taskId", "createdAt",
                         "startedAt", "finishedAt", "resultUrl"}})  # fmt: skip
            assert end["resultUrl"] == f"{AUTH}/email-tasks/{task_id}/result"
            results.append((await http.get(end["resultUrl"])).json()["data"])
            generic = await http.get(f"/api/v1/tasks/{task_id}/result")
            assert generic.status_code == 401  # results are for owners; these have none
        assert ends[0] == ends[1] and ends[0]["status"] == "completed"
        assert results[0] == results[1] == {"sent": True, "template": "reset"}
        # what differs is only what the mailbox's owner reads
        assert link_in(await smtp.mail_for(user.email, about=RESET))[0] == "/reset-password"
        assert link_in_or_signup(await smtp.mail_for(stranger)) == "/signup"


def link_in_or_signup(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert "가입된 계정이 없습니다" in body.get_content()
    return "/signup" if "http://app.test/signup" in body.get_content() else "?"


async def test_a_mailed_reset_token_sets_a_new_password_once_and_ends_old_sessions(
    web: Proc, smtp: MailServer
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        await http.post(f"{AUTH}/password/reset-request", json={"email": user.email})
        _, token = link_in(await smtp.mail_for(user.email, about=RESET))
        assert (await http.get(f"/reset-password?token={token}")).status_code == 200
        new = {"token": token, "password": "a brand new one"}
        reset = await http.post(f"{AUTH}/password/reset", json=new)
        assert reset.status_code == 200
        again = await http.post(f"{AUTH}/password/reset", json=new)
        assert again.status_code == 400
        old = await http.post(
            f"{AUTH}/login", json={"email": user.email, "password": user.password}
        )
        assert old.status_code == 401
        fresh = await http.post(
            f"{AUTH}/login", json={"email": user.email, "password": new["password"]}
        )
        assert fresh.status_code == 200
        assert (await http.get(f"{AUTH}/me", headers=user.headers)).status_code == 401
        short = await http.post(f"{AUTH}/password/reset", json={"token": token, "password": "x"})
        assert short.status_code == 422


async def test_of_two_reset_links_used_at_once_one_wins_and_the_other_is_dead(
    web: Proc, smtp: MailServer
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        for _ in range(2):
            await http.post(f"{AUTH}/password/reset-request", json={"email": user.email})
        tokens = [link_in(await smtp.mail_for(user.email, count=n, about=RESET))[1] for n in (1, 2)]
        answers = await asyncio.gather(
            *(
                http.post(f"{AUTH}/password/reset", json={"token": t, "password": f"new pass {t}"})
                for t in tokens
            )
        )
        assert sorted(a.status_code for a in answers) == [200, 400]
        loser = tokens[[a.status_code for a in answers].index(400)]
        late = await http.post(f"{AUTH}/password/reset", json={"token": loser, "password": "x" * 9})
        assert late.status_code == 400


async def test_a_reset_mail_goes_to_the_address_as_stored_not_as_typed(web: Proc, smtp: MailServer):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http, email=f"Min.Ji-{uuid.uuid4().hex[:6]}@example.com")
        stored = (await http.get(f"{AUTH}/me", headers=user.headers)).json()["data"]["email"]
        typed = stored.lower()
        assert typed != stored
        await http.post(f"{AUTH}/password/reset-request", json={"email": typed})
        mail = await smtp.mail_for(stored, about=RESET)
        assert mail["To"] == stored and link_in(mail)[0] == "/reset-password"
        assert smtp.to(typed) == []


async def test_a_mail_server_that_refuses_once_is_tried_again(web: Proc, smtp: MailServer):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http, email=f"flaky-{uuid.uuid4().hex[:6]}+flaky@example.com")
        end = await email_task(http, user.signup_task, user.headers)
        assert (end["status"], end["attempt"]) == ("completed", 2)
        assert user.email in smtp.recorder.refused
        assert (await smtp.mail_for(user.email))["To"] == user.email


async def test_a_permanent_rejection_fails_the_mail_task_with_its_code(
    web: Proc, auth: dict[str, str]
):
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http, email=f"gone-{uuid.uuid4().hex[:6]}+reject@example.com")
        end = await email_task(http, user.signup_task, user.headers)
        assert (end["status"], end["errorCode"], end["attempt"]) == ("failed", "SMTP_REJECTED", 1)
        assert "550" in end["errorMessage"]
        # someone else's mail task is not found
        other = await http.get(f"{AUTH}/email-tasks/{user.signup_task}/status", headers=auth)
        assert other.status_code == 404


async def test_an_unreachable_mail_server_is_retried_then_fails_unavailable(
    private: Any, auth: dict[str, str]
):
    from taskstream.embedded import free_port

    closed = {"SMTP_PORT": str(free_port()), "TASKSTREAM_MAX_TRIES_EMAIL": "2"}
    web = private("web", **closed)
    private("worker", **closed)
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        end = await email_task(http, user.signup_task, user.headers)
        assert (end["status"], end["errorCode"], end["attempt"]) == (
            "failed",
            "SMTP_UNAVAILABLE",
            2,
        )


async def test_a_mail_not_yet_sent_is_cancelled_by_the_holder_of_its_task_id(private: Any):
    from taskstream.embedded import free_port

    closed = {"SMTP_PORT": str(free_port()), "TASKSTREAM_MAX_TRIES_EMAIL": "20"}
    web = private("web", **closed)
    private("worker", **closed)
    async with httpx.AsyncClient(base_url=web.url) as http:  # signed out, as a reset is
        answer = await http.post(f"{AUTH}/password/reset-request", json={"email": address()})
        links = answer.json()["data"]["links"]
        await wait_for_task(
            http, "", lambda d: d["currentStage"] == "retrying", url=links["status"]
        )
        cancelled = await http.post(links["cancel"])
        assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"
        again = await http.post(links["cancel"])
        assert (again.status_code, again.json()["error"]["code"]) == (409, "TASK_FINISHED")
        result = await http.get(links["result"])
        assert (result.status_code, result.json()["error"]["code"]) == (409, "TASK_CANCELLED")


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["no-proxy-trusted", "proxy-trusted"])
async def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(private: Any, trusted: str):
    limits = {"TASKSTREAM_RATE_LOGIN_PER_CLIENT": "3", "TASKSTREAM_RATE_WINDOW_SECONDS": "3598"}
    web = private("web", TASKSTREAM_TRUSTED_PROXIES=trusted, **limits)
    async with httpx.AsyncClient(base_url=web.url) as http:
        codes = []
        for n in range(5):  # each from "another client", as a rotating header claims
            forwarded = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
            attempt = {"email": address(), "password": "wrong one"}
            answer = await http.post(f"{AUTH}/login", json=attempt, headers=forwarded)
            codes.append(answer.status_code)
    assert codes == ([401] * 5 if trusted else [401, 401, 401, 429, 429])


async def test_successful_logins_do_not_count_against_the_limits(private: Any):
    limits = {"TASKSTREAM_RATE_LOGIN_PER_CLIENT": "3", "TASKSTREAM_RATE_LOGIN_PER_EMAIL": "3",
              "TASKSTREAM_RATE_WINDOW_SECONDS": "3597"}  # fmt: skip
    web = private("web", **limits)
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        right = {"email": user.email, "password": user.password}
        codes = [(await http.post(f"{AUTH}/login", json=right)).status_code for _ in range(5)]
        assert codes == [200] * 5
        wrong = right | {"password": "wrong one"}
        codes = [(await http.post(f"{AUTH}/login", json=wrong)).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]


async def test_guessing_from_elsewhere_does_not_lock_the_owner_out(private: Any):
    limits = {"TASKSTREAM_RATE_LOGIN_PER_EMAIL": "3", "TASKSTREAM_RATE_WINDOW_SECONDS": "3596"}
    web = private("web", TASKSTREAM_TRUSTED_PROXIES="127.0.0.1", **limits)
    home = {"X-Forwarded-For": "203.0.113.5"}
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        right = {"email": user.email, "password": user.password}
        assert (await http.post(f"{AUTH}/login", json=right, headers=home)).status_code == 200
        wrong = right | {"password": "a guess"}
        guesses = [
            await http.post(
                f"{AUTH}/login", json=wrong, headers={"X-Forwarded-For": f"198.51.100.{n}"}
            )
            for n in range(5)
        ]
        assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429]
        stranger = {"X-Forwarded-For": "198.51.100.99"}  # even the right password, from afar
        assert (await http.post(f"{AUTH}/login", json=right, headers=stranger)).status_code == 429
        owner = await http.post(f"{AUTH}/login", json=right, headers=home)
        assert owner.status_code == 200  # from where she signs in, she still can


async def test_rate_limits_answer_429_with_retry_after_per_address_and_per_client(private: Any):
    limits = {"TASKSTREAM_RATE_LOGIN_PER_EMAIL": "2", "TASKSTREAM_RATE_RESET_PER_CLIENT": "3"}
    # windows of their own length, so that other tests' requests from 127.0.0.1 count not
    web = private("web", TASKSTREAM_RATE_WINDOW_SECONDS="3599", **limits)
    async with httpx.AsyncClient(base_url=web.url) as http:
        user = await signup(http)
        attempt = {"email": user.email, "password": "wrong one"}
        codes = [(await http.post(f"{AUTH}/login", json=attempt)).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        limited = await http.post(f"{AUTH}/login", json=attempt | {"password": user.password})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["retry-after"]) <= 3599
        # another address from the same client is still let in
        other = await signup(http)
        fine = await http.post(
            f"{AUTH}/login", json={"email": other.email, "password": other.password}
        )
        assert fine.status_code == 200
        # per client: three reset requests, whatever the addresses, then 429
        resets = [
            (
                await http.post(f"{AUTH}/password/reset-request", json={"email": address()})
            ).status_code
            for _ in range(4)
        ]
        assert resets == [202, 202, 202, 429]
        # per address: signups for one address, taken or not, count (limit 3)
        again = {"email": user.email, "password": "correct horse", "name": "b"}
        signups = [(await http.post(f"{AUTH}/signup", json=again)).status_code for _ in range(3)]
        assert signups == [409, 409, 429]
