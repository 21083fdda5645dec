"""Rate limits on the account endpoints: per client address and per e-mail address.

Fixed windows of `TASKSTREAM_RATE_WINDOW_SECONDS`, counted in Redis (so every web
process shares them). Every attempt counts, successful or not; over the limit the
answer is 429 `RATE_LIMITED` with `Retry-After`, the seconds until the window turns.
"""

from __future__ import annotations

import math
import time

from starlette.requests import Request

from jobs.accounts import digest, normalize
from server.errors import TooManyRequests
from server.state import app_state


async def limit(request: Request, action: str, email: str | None = None) -> None:
    state = app_state(request)
    auth = state["settings"].auth
    per_client, per_email = auth.limits[action]
    now = time.time()
    window = int(now // auth.window_s)
    client = request.client.host if request.client else "unknown"
    scopes = [(f"client:{client}", per_client)]
    if email is not None:
        scopes.append((f"email:{digest(normalize(email))}", per_email))
    async with state["store"].redis.pipeline(transaction=False) as pipe:
        for scope, _ in scopes:
            key = f"ts:rate:{action}:{scope}:{window}"
            pipe.incr(key)
            pipe.expire(key, math.ceil(auth.window_s) + 1)
        counts = (await pipe.execute())[::2]
    if any(count > allowed for count, (_, allowed) in zip(counts, scopes, strict=True)):
        retry_after = max(1, math.ceil((window + 1) * auth.window_s - now))
        raise TooManyRequests(
            f"too many {action} attempts; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
