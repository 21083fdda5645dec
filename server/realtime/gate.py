"""The bounds on the streams one web process holds, and their count by transport.

Past `TASKSTREAM_MAX_STREAMS` a new SSE stream is answered 503 `STREAMS_EXHAUSTED` with
`Retry-After` (a load balancer sends the retry to another process), and a new WebSocket is
closed with 1013 ("try again later"), instead of growing memory until the process dies.
Past `TASKSTREAM_MAX_STREAMS_PER_USER` streams of one user in this process, a new one is
refused 429 `TOO_MANY_STREAMS` with `Retry-After` (the client library needs one).

A stream is counted the moment it is admitted, before the first await of its answer, so
that concurrent opens cannot all pass the check before any is counted.
"""

from __future__ import annotations

from collections import Counter

from server.errors import ApiError, TooManyRequests

RETRY_AFTER_S = 5


class StreamsExhausted(ApiError):
    status_code = 503
    code = "STREAMS_EXHAUSTED"


class Gate:
    def __init__(self, limit: int, per_user: int) -> None:
        self.limit = limit
        self.per_user = per_user
        self.open: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # events sent, by transport
        self.polls = 0  # status requests answered (200 or 304)

    @property
    def full(self) -> bool:
        return self.open.total() >= self.limit

    def admit(self, transport: str, user: str) -> Admission:
        """Count a new stream of `user` now, or refuse it; release the admission when the
        stream ends."""
        self._check(user)
        self.open[transport] += 1
        self.by_user[user] += 1
        return Admission(self, transport, user)

    def _check(self, user: str) -> None:
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        if self.full:
            raise StreamsExhausted(
                f"this process holds its maximum of {self.limit} streams; retry shortly",
                headers=retry,
            )
        if self.by_user[user] >= self.per_user:
            raise TooManyRequests(
                f"at most {self.per_user} open streams per user; close one first",
                code="TOO_MANY_STREAMS",
                headers=retry,
            )

    def _release(self, transport: str, user: str) -> None:
        self.open[transport] -= 1
        self.by_user[user] -= 1
        if not self.by_user[user]:
            del self.by_user[user]


class Admission:
    """One admitted stream's place at the gate; `release()` gives it back, once."""

    def __init__(self, gate: Gate, transport: str, user: str) -> None:
        self._gate: Gate | None = gate
        self.transport = transport
        self.user = user

    def release(self) -> None:
        if self._gate is not None:
            self._gate._release(self.transport, self.user)
            self._gate = None
