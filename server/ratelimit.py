"""Rate limits on the account endpoints: per client address and per e-mail address.

Fixed windows of `TASKSTREAM_RATE_WINDOW_SECONDS`, counted in Redis (so every web
process shares them); each count is one atomic INCR, so a burst cannot overshoot. Over
the limit the answer is 429 `RATE_LIMITED` with `Retry-After`, the seconds until the
window turns.

Logins are counted so that failed guesses are limited without locking the owner out: a
successful login gives its count back (`Spent.refund`), and a client address from which
the account has signed in before (in the last 30 days) is not held to the per-address
limit, only to its own per-client one. Someone guessing from elsewhere locks the address
only for addresses the owner has not used; she still has the reset mail.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.requests import Request

from jobs.accounts import digest, normalize
from jobs.infra import keys
from server.client_address import client_of
from server.errors import TooManyRequests
from server.state import app_state

KNOWN_CLIENT_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Spent:
    """The counts one attempt added; a successful login gives them back."""

    redis: Redis
    keys: tuple[str, ...]

    async def refund(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                pipe.decr(key)
            await pipe.execute()


async def limit(
    request: Request, action: str, email: str | None = None, *, per_email: bool = True
) -> Spent:
    state = app_state(request)
    auth, redis = state["settings"].auth, state["redis"]
    per_client, per_address = auth.limits[action]
    now = time.time()
    window = int(now // auth.window_s)
    scopes = [(f"client:{client_of(request)}", per_client)]
    if email is not None and per_email:
        scopes.append((f"email:{digest(normalize(email))}", per_address))
    counted = tuple(keys.rate(action, scope, window) for scope, _ in scopes)
    async with redis.pipeline(transaction=False) as pipe:
        for key in counted:
            pipe.incr(key)
            pipe.expire(key, math.ceil(auth.window_s) + 1)
        counts = (await pipe.execute())[::2]
    if any(count > allowed for count, (_, allowed) in zip(counts, scopes, strict=True)):
        retry_after = max(1, math.ceil((window + 1) * auth.window_s - now))
        raise TooManyRequests(
            f"too many {action} attempts; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    return Spent(redis, counted)


def _known_key(request: Request, email: str) -> str:
    return keys.known_client(digest(normalize(email)), client_of(request))


async def is_known_client(request: Request, email: str) -> bool:
    """The account has signed in from this client address lately."""
    return bool(await app_state(request)["redis"].exists(_known_key(request, email)))


async def remember_client(request: Request, email: str) -> None:
    await app_state(request)["redis"].set(_known_key(request, email), 1, ex=KNOWN_CLIENT_S)
