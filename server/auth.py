"""Who is asking: access tokens, rotating refresh tokens and stream tickets.

- Access token: a JWT (HS256, `TASKSTREAM_SECRET_KEY`), short-lived, sent as
  `Authorization: Bearer …`; it names the user and the refresh-token family it came from,
  so a logout (which revokes the family) ends it at once.
- Refresh token: opaque, single use. Using one gives a new pair in the same family; using
  one twice means it was stolen, and revokes the whole family.
- Stream ticket: `EventSource` cannot send headers, and a long-lived token must never sit
  in a URL, so a stream may instead carry `?ticket=`, single use, valid for
  `TASKSTREAM_STREAM_TICKET_SECONDS`, ending when the access token that asked for it does.

Only SHA-256 digests of refresh tokens and tickets are stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from starlette.requests import HTTPConnection

from jobs.accounts import digest
from jobs.infra import keys
from jobs.record.keys import channel
from jobs.record.values import Event
from server.errors import Unauthorized
from server.realtime.sessions import REVOCATIONS, Watch
from server.state import app_state

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, until when, and the token family."""

    user_id: str
    expires_at: float  # epoch seconds
    family: str


async def issue_tokens(conn: HTTPConnection, user_id: str, family: str | None = None) -> Any:
    """A new access token and refresh token (a new family unless one is given)."""
    state = app_state(conn)
    auth, redis = state["settings"].auth, state["redis"]
    family = family or str(uuid.uuid4())
    now = time.time()
    claims = {"sub": user_id, "fam": family, "iat": int(now), "exp": int(now + auth.access_ttl_s)}
    access = jwt.encode(claims, state["settings"].require_secret(), algorithm=ALGORITHM)
    refresh = secrets.token_urlsafe(32)
    record = {"userId": user_id, "family": family, "used": 0}
    ttl = int(auth.refresh_ttl_s)
    async with redis.pipeline(transaction=True) as tx:
        tx.hset(keys.refresh(digest(refresh)), mapping=record)
        tx.expire(keys.refresh(digest(refresh)), ttl)
        tx.sadd(keys.login_families(user_id), family)
        tx.expire(keys.login_families(user_id), ttl)
        await tx.execute()
    return {
        "accessToken": access,
        "refreshToken": refresh,
        "tokenType": "Bearer",
        "expiresIn": int(auth.access_ttl_s),
    }


async def rotate(conn: HTTPConnection, refresh: str) -> Any:
    """A new pair for a refresh token used for the first time."""
    redis = app_state(conn)["redis"]
    key = keys.refresh(digest(refresh))
    record: dict[str, str] = await redis.hgetall(key)  # type: ignore[misc]
    if not record or await redis.exists(keys.revoked(record["family"])):
        raise Unauthorized("the refresh token is not valid", code="INVALID_REFRESH_TOKEN")
    if await redis.hincrby(key, "used", 1) > 1:  # type: ignore[misc]
        await revoke(conn, record["family"])
        raise Unauthorized(
            "the refresh token was already used; every session of its login is ended",
            code="REFRESH_TOKEN_REUSED",
        )
    return await issue_tokens(conn, record["userId"], record["family"])


async def revoke(conn: HTTPConnection, family: str) -> None:
    """End the sessions of a login: its refresh and access tokens stop working, and every
    web process ends the streams open with them."""
    state = app_state(conn)
    ttl = int(state["settings"].auth.refresh_ttl_s)  # outlives every token of the family
    redis = state["redis"]
    await redis.set(keys.revoked(family), "1", ex=ttl)
    announced = Event(f"{int(time.time() * 1000)}-0", "revoked", family)  # now: the hub's lag
    # on the streams store, whose channels the hubs follow
    records = state["store"].records
    await records.execute_command("SPUBLISH", channel(REVOCATIONS), announced.message)


async def revoke_all(conn: HTTPConnection, user_id: str) -> None:
    """End every session of the user (after a password reset)."""
    redis = app_state(conn)["redis"]
    for family in await redis.smembers(keys.login_families(user_id)):  # type: ignore[misc]
        await revoke(conn, family)


async def family_of(conn: HTTPConnection, refresh: str, user_id: str) -> str | None:
    """The login of `user_id`'s refresh token; None for a token of someone else's."""
    redis = app_state(conn)["redis"]
    key = keys.refresh(digest(refresh))
    owner, family = await redis.hmget(key, ["userId", "family"])  # type: ignore[misc]
    return family if owner == user_id else None


async def authenticate(conn: HTTPConnection, *, ticket: bool = False) -> Principal:
    """The caller, from `Authorization: Bearer`, or (streams) a `?ticket=`; else 401.

    Known once per request: a second call returns the first answer (a ticket is spent).
    """
    known: Principal | None = conn.scope.get("taskstream.principal")
    if known is not None:
        return known
    principal = await _unrevoked(conn, await identify(conn, ticket=ticket))
    conn.scope["taskstream.principal"] = principal
    return principal


async def identify(conn: HTTPConnection, *, ticket: bool = False) -> Principal:
    """The caller as their token or ticket names them, not yet checked against
    revocation: the caller of this does that in its own read (a stream's first one,
    guarded by `keys.revoked(principal.family)`), else it must use `authenticate`."""
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    raw = conn.query_params.get("ticket") if ticket else None
    if scheme.lower() == "bearer" and token:
        return _from_access_token(conn, token.strip())
    if raw:
        return await _from_ticket(conn, raw)
    raise Unauthorized("sign in first: send Authorization: Bearer <accessToken>")


def has_credentials(conn: HTTPConnection, *, ticket: bool = False) -> bool:
    return "authorization" in conn.headers or (ticket and "ticket" in conn.query_params)


def _from_access_token(conn: HTTPConnection, token: str) -> Principal:
    try:
        principal = _verified(token, app_state(conn)["settings"].require_secret())
    except jwt.InvalidTokenError:
        raise Unauthorized("the access token is not valid", code="INVALID_TOKEN") from None
    if principal.expires_at <= time.time():
        raise Unauthorized("the access token has expired; refresh it", code="TOKEN_EXPIRED")
    return principal


@lru_cache(maxsize=8192)
def _verified(token: str, secret: str) -> Principal:
    """The token's claims once its signature is checked; remembered, since one client
    opens many streams with one token (expiry is checked on every use, revocation too)."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "fam", "exp"], "verify_exp": False},
    )
    return Principal(claims["sub"], float(claims["exp"]), claims["fam"])


async def watch_login(
    conn: HTTPConnection, principal: Principal, *, guarded: bool = False
) -> Watch:
    """Start watching the login of a stream being opened (`sessions.py`), then make sure
    it was not revoked before: a revocation announced before the watch began found nothing
    to end, and a check made before it (`authenticate`'s) cannot see one announced in
    between. `guarded`: the stream's own first read checks `keys.revoked` (cheaper)."""
    state = app_state(conn)
    pause = state["settings"].stream_open_pause_s
    if pause:  # tests only: a revocation lands here (`tests/realtime/test_revocation.py`)
        logger.info("stream opening paused", extra={"family": principal.family})
        await asyncio.sleep(pause)
    watch = state["sessions"].open(principal.family, principal.expires_at)
    if not guarded:
        try:
            await _unrevoked(conn, principal)
        except BaseException:
            watch.close()
            raise
    return watch


async def _unrevoked(conn: HTTPConnection, principal: Principal) -> Principal:
    if await app_state(conn)["redis"].exists(keys.revoked(principal.family)):
        raise session_revoked()
    return principal


def session_revoked() -> Unauthorized:
    return Unauthorized("the session has ended; sign in again", code="TOKEN_REVOKED")


async def issue_ticket(conn: HTTPConnection, principal: Principal) -> dict[str, Any]:
    state = app_state(conn)
    ttl = state["settings"].auth.ticket_ttl_s
    ticket = secrets.token_urlsafe(24)
    record = {"userId": principal.user_id, "exp": principal.expires_at, "fam": principal.family}
    await state["redis"].set(keys.ticket(digest(ticket)), json.dumps(record), ex=int(ttl))
    return {"ticket": ticket, "expiresIn": int(ttl)}


async def _from_ticket(conn: HTTPConnection, ticket: str) -> Principal:
    state = app_state(conn)
    raw = await state["redis"].getdel(keys.ticket(digest(ticket)))
    if raw is None:
        raise Unauthorized(
            "the stream ticket is not valid (used or expired)", code="INVALID_TICKET"
        )
    record = json.loads(raw)
    if record["exp"] <= time.time():
        raise Unauthorized("the access token behind the ticket has expired", code="TOKEN_EXPIRED")
    return Principal(record["userId"], float(record["exp"]), record["fam"])
