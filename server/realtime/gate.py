"""The bound on the streams one web process holds, and their count by transport.

Past `TASKSTREAM_MAX_STREAMS` a new SSE stream is answered 503 `STREAMS_EXHAUSTED` with
`Retry-After` (a load balancer sends the retry to another process), and a new WebSocket is
closed with 1013 ("try again later"), instead of growing memory until the process dies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import ApiError

RETRY_AFTER_S = 5


class StreamsExhausted(ApiError):
    status_code = 503
    code = "STREAMS_EXHAUSTED"


class Gate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # events sent, by transport
        self.polls = 0  # status requests answered (200 or 304)

    @property
    def full(self) -> bool:
        return self.open.total() >= self.limit

    def check(self) -> None:
        if self.full:
            raise StreamsExhausted(
                f"this process holds its maximum of {self.limit} streams; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    @contextmanager
    def hold(self, transport: str) -> Iterator[None]:
        self.open[transport] += 1
        try:
            yield
        finally:
            self.open[transport] -= 1
