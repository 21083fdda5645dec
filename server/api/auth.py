"""`/api/v1/auth/…`: accounts, sessions, and the e-mails they send (as `email` tasks).

Passwords are hashed with Argon2id (argon2-cffi's defaults), in a thread so the event
loop keeps serving streams. A login for an unknown address verifies a dummy hash, so it
takes as long as a wrong password. A password-reset request answers the same `202`
whatever the address: the `email` job decides, in the worker, what to send.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobs.accounts import UserStore, public
from jobs.kinds.email import KIND as MAIL
from jobs.kinds.email import Params as MailParams
from jobs.runtime import intake
from server.auth import (
    authenticate,
    family_of,
    issue_ticket,
    issue_tokens,
    revoke,
    revoke_all,
    rotate,
)
from server.errors import ApiError, Conflict, Unauthorized
from server.ratelimit import is_known_client, limit, remember_client
from server.responses import ok, parse_body
from server.state import app_state
from server.submit import links

BASE = "/api/v1/auth"
HASHER = PasswordHasher()
Password = Field(min_length=8, max_length=128)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SignupRequest(_Body):
    email: EmailStr
    password: str = Password
    name: str = Field(min_length=1, max_length=100)
    language: Literal["ko", "en"] = "ko"


class LoginRequest(_Body):
    email: EmailStr
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(_Body):
    refreshToken: str = Field(min_length=1, max_length=200)


class LogoutRequest(_Body):
    refreshToken: str | None = Field(default=None, max_length=200)


class TokenRequest(_Body):
    token: str = Field(min_length=1, max_length=200)


class ResetRequest(_Body):
    email: EmailStr


class NewPasswordRequest(_Body):
    token: str = Field(min_length=1, max_length=200)
    password: str = Password


NO_STORE = {"Cache-Control": "no-store"}  # an answer carrying credentials: kept by no cache


@cache
def dummy_hash() -> str:
    return HASHER.hash("no account has this password")


async def password_matches(hashed: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(HASHER.verify, hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def users(request: Request) -> UserStore:
    return app_state(request)["users"]


async def mail_task(request: Request, params: MailParams, owner: str) -> dict[str, Any]:
    state = app_state(request)
    task = await intake.submit(
        state["store"], state["queue"], state["settings"], MAIL, params,
        owner=owner, estimated_time=2,
    )  # fmt: skip
    mine = links(task.id, MAIL.path)
    if not owner:  # no account to stream with: the id is the only key, for these three
        mine = {name: mine[name] for name in ("status", "result", "cancel")}
    return {"taskId": task.id, "status": task.status, "links": mine}


async def signup(request: Request) -> Response:
    body = await parse_body(request, SignupRequest)
    await limit(request, "signup", body.email)
    hashed = await asyncio.to_thread(HASHER.hash, body.password)
    user = await users(request).create(body.email, body.name, hashed, body.language)
    if user is None:
        raise Conflict("an account with this e-mail address exists", code="EMAIL_TAKEN")
    tokens = await issue_tokens(request, user["id"])
    mail = await mail_task(request, MailParams(template="verify", userId=user["id"]), user["id"])
    return ok({"user": public(user), "tokens": tokens, **mail}, 201, NO_STORE)


async def login(request: Request) -> Response:
    body = await parse_body(request, LoginRequest)
    known = await is_known_client(request, body.email)
    spent = await limit(request, "login", body.email, per_email=not known)
    user = await users(request).by_email(body.email)
    hashed = user["passwordHash"] if user is not None else dummy_hash()
    if not await password_matches(hashed, body.password) or user is None:
        raise Unauthorized("wrong e-mail address or password", code="INVALID_CREDENTIALS")
    await spent.refund()  # only failures count
    await remember_client(request, body.email)
    tokens = await issue_tokens(request, user["id"])
    return ok({"user": public(user), "tokens": tokens}, headers=NO_STORE)


async def refresh(request: Request) -> Response:
    body = await parse_body(request, RefreshRequest)
    return ok({"tokens": await rotate(request, body.refreshToken)}, headers=NO_STORE)


async def logout(request: Request) -> Response:
    """End the session of the access token (and of the refresh token, if given)."""
    principal = await authenticate(request)
    body = await parse_body(request, LogoutRequest)
    families = {principal.family}
    given = body.refreshToken and await family_of(request, body.refreshToken, principal.user_id)
    if given:
        families.add(given)
    for family in families:
        await revoke(request, family)
    return ok({"loggedOut": True})


async def current_user(request: Request) -> dict[str, Any]:
    """The signed-in user's account; 401 if it is gone."""
    user = await users(request).get((await authenticate(request)).user_id)
    if user is None:
        raise Unauthorized("the account no longer exists", code="INVALID_TOKEN")
    return user


async def me(request: Request) -> Response:
    return ok(public(await current_user(request)))


async def verify_email(request: Request) -> Response:
    body = await parse_body(request, TokenRequest)
    user_id = await users(request).use_token("verify", body.token)
    user = await users(request).get(user_id) if user_id else None
    if user is None:
        raise ApiError("the link is not valid (used or expired)", code="INVALID_OR_EXPIRED_TOKEN")
    await users(request).update(user["id"], emailVerified="1")
    return ok(public(user | {"emailVerified": "1"}))


async def resend_verification(request: Request) -> Response:
    user = await current_user(request)
    await limit(request, "resend", user["email"])
    if user["emailVerified"] == "1":
        raise Conflict("the e-mail address is already confirmed", code="ALREADY_VERIFIED")
    mail = await mail_task(request, MailParams(template="verify", userId=user["id"]), user["id"])
    return ok(mail, 202)


async def reset_request(request: Request) -> Response:
    body = await parse_body(request, ResetRequest)
    await limit(request, "reset", body.email)
    # no account lookup here: the same work, the same answer, for every address
    return ok(
        await mail_task(request, MailParams(template="reset", email=body.email), owner=""), 202
    )


async def reset_password(request: Request) -> Response:
    body = await parse_body(request, NewPasswordRequest)
    user_id = await users(request).use_token("reset", body.token)
    if user_id is None or await users(request).get(user_id) is None:
        raise ApiError("the link is not valid (used or expired)", code="INVALID_OR_EXPIRED_TOKEN")
    hashed = await asyncio.to_thread(HASHER.hash, body.password)
    await users(request).update(user_id, passwordHash=hashed)
    await revoke_all(request, user_id)
    return ok({"passwordReset": True})


async def stream_ticket(request: Request) -> Response:
    """A ticket to open a stream with; 503 (or 429) with `Retry-After` when this process
    would refuse the stream (a browser's `EventSource` cannot read the stream's own)."""
    principal = await authenticate(request)
    app_state(request)["gate"].check(principal.user_id)
    return ok(await issue_ticket(request, principal), 201, NO_STORE)


routes = [
    Route(BASE + "/signup", signup, methods=["POST"]),
    Route(BASE + "/login", login, methods=["POST"]),
    Route(BASE + "/refresh", refresh, methods=["POST"]),
    Route(BASE + "/logout", logout, methods=["POST"]),
    Route(BASE + "/me", me),
    Route(BASE + "/verify-email", verify_email, methods=["POST"]),
    Route(BASE + "/verify-email/resend", resend_verification, methods=["POST"]),
    Route(BASE + "/password/reset-request", reset_request, methods=["POST"]),
    Route(BASE + "/password/reset", reset_password, methods=["POST"]),
    Route("/api/v1/stream-tickets", stream_ticket, methods=["POST"]),
]
