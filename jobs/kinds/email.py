"""The `email` kind: account mails (verify the address, reset the password) over SMTP.

The job issues the one-time token it mails, so no token travels through the queue. A
reset request for an address with no account sends a mail saying so instead: the task
runs the same stages and ends with the same result either way, so nothing the requester
can observe tells whether the account exists.

SMTP failures: no connection, a timeout or a 4xx reply are transient (retried with
backoff, the attempt visible); a 5xx reply fails the task `SMTP_REJECTED`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel

from jobs.errors import JobError, TransientError
from jobs.infra.config import SmtpSettings
from jobs.kind import JobContext, Kind, KindPolicy


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    lines: tuple[str, ...]  # paragraphs of the text body
    link: str
    button: str


# template → language → (subject, paragraphs, link text)
TEXTS = {
    "verify": {
        "ko": (
            "[Taskstream] 이메일 주소를 확인해 주세요",
            (
                "{name}님, 가입해 주셔서 감사합니다.",
                "아래 링크를 눌러 이메일 주소를 확인해 주세요.",
                "링크는 24시간 동안 유효합니다.",
            ),
            "이메일 확인하기",
        ),
        "en": (
            "[Taskstream] Confirm your e-mail address",
            (
                "Welcome, {name}.",
                "Follow the link below to confirm your address.",
                "It is valid for 24 hours.",
            ),
            "Confirm my address",
        ),
    },
    "reset": {
        "ko": (
            "[Taskstream] 비밀번호 재설정 안내",
            (
                "{name}님, 비밀번호 재설정이 요청되었습니다.",
                "아래 링크에서 새 비밀번호를 정해 주세요. 링크는 1시간 동안 유효합니다.",
                "요청하지 않으셨다면 이 메일을 무시하셔도 됩니다.",
            ),
            "비밀번호 재설정",
        ),
        "en": (
            "[Taskstream] Reset your password",
            (
                "{name}, a password reset was asked for.",
                "Choose a new password at the link below; it is valid for an hour.",
                "If you did not ask, ignore this mail.",
            ),
            "Reset my password",
        ),
    },
    "reset_unknown": {
        "ko": (
            "[Taskstream] 비밀번호 재설정 안내",
            (
                "이 주소로 비밀번호 재설정이 요청되었지만, 이 주소로 가입된 계정이 없습니다.",
                "가입하시려면 아래 링크를 이용해 주세요.",
                "요청하지 않으셨다면 이 메일을 무시하셔도 됩니다.",
            ),
            "가입하기",
        ),
        "en": (
            "[Taskstream] Reset your password",
            (
                "A password reset was asked for this address, but no account uses it.",
                "To sign up, follow the link below.",
                "If you did not ask, ignore this mail.",
            ),
            "Sign up",
        ),
    },
}
PATHS = {"verify": "/verify-email", "reset": "/reset-password", "reset_unknown": "/signup"}


class Params(BaseModel):
    """A verification mail to an account, or a reset mail to an address (whether or not an
    account uses it)."""

    template: Literal["verify", "reset"]
    userId: str | None = None
    email: str | None = None
    language: str | None = None


async def email(job: JobContext, params: Params) -> dict[str, Any]:
    users = job.users
    await job.progress.update(progress=10, stage="composing")
    if params.template == "verify":
        user = await users.get(params.userId or "")
        if user is None:
            raise JobError("the account no longer exists", code="USER_NOT_FOUND")
        template, to, name = "verify", user["email"], user["name"]
        token: str | None = await users.issue_token("verify", user["id"])
    else:  # reset: the same steps whether or not the account exists
        user = await users.by_email(params.email or "")
        to = user["email"] if user is not None else params.email or ""  # as stored, not typed
        template = "reset" if user is not None else "reset_unknown"
        name = user["name"] if user is not None else ""
        token = await users.issue_token("reset", user["id"]) if user is not None else None
    language = params.language or (user or {}).get("language") or "ko"
    mail = compose(template, language, to, name, job.settings.public_url, token)
    await job.progress.update(progress=40, stage="sending")
    await send(mail, job.settings.smtp)
    return {"sent": True, "template": params.template}


def compose(
    template: str, language: str, to: str, name: str, public_url: str, token: str | None
) -> Mail:
    subject, lines, button = TEXTS[template]["en" if language == "en" else "ko"]
    link = public_url + PATHS[template] + (f"?token={token}" if token else "")
    return Mail(to, subject, tuple(line.format(name=name) for line in lines), link, button)


def message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg.set_content("\n\n".join((*mail.lines, mail.link)) + "\n")
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in mail.lines)
    link = html.escape(mail.link, quote=True)
    msg.add_alternative(
        f'<!doctype html><html lang="ko"><body>{paragraphs}'
        f'<p><a href="{link}">{html.escape(mail.button)}</a></p>'
        f"<p>{link}</p></body></html>",
        subtype="html",
    )
    return msg


async def send(mail: Mail, smtp: SmtpSettings) -> None:
    try:
        await aiosmtplib.send(
            message(mail, smtp.sender),
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.tls == "tls",
            start_tls=smtp.tls == "starttls",
            timeout=smtp.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as refused:
        raise _by_code(min(r.code for r in refused.recipients), "refused the recipient") from None
    except aiosmtplib.SMTPResponseException as reply:
        raise _by_code(reply.code, reply.message) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise TransientError(
            f"the mail server is unreachable: {type(error).__name__}", code="SMTP_UNAVAILABLE"
        ) from None


def _by_code(code: int, text: str) -> JobError:
    if 400 <= code < 500:
        return TransientError(f"the mail server said {code}: {text}", code="SMTP_TEMPORARY")
    return JobError(f"the mail server said {code}: {text}", code="SMTP_REJECTED")


KIND = Kind(
    "email",
    Params,
    KindPolicy(timeout_s=60, max_tries=5, retry_backoff_s=2),
    email,
    path="/api/v1/auth/email-tasks",
    queue="mail",
    ownerless=True,
    counted=False,
)
