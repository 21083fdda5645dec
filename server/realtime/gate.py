"""The bounds on the streams one web process holds, and their count by transport.

A process holds at most `capacity()` streams: as many as its open-files limit (raised at
start to the hard limit) holds beside a reserve for its Redis connections, the listener
and ordinary requests, or `TASKSTREAM_MAX_STREAMS` when that is fewer. Past it every stream route
(SSE, all-tasks, the WebSocket handshake, a stream ticket) answers at once 503
`STREAMS_EXHAUSTED` with a
jittered `Retry-After` (a load balancer sends the retry to another process; a crowd does
not come back at once), and ordinary requests go on being served; one warning a episode,
not one a refusal, and `/metrics` counts them. Past `TASKSTREAM_MAX_STREAMS_PER_USER`
streams of one user, in all web processes together (`tally.py`), a new one is refused
429 `TOO_MANY_STREAMS` with `Retry-After` (the client library needs one).

A stream is counted the moment it is admitted, before the first await of its answer, so
that concurrent opens cannot all pass the check before any is counted.
"""

from __future__ import annotations

import logging
from collections import Counter

from jobs.infra.openfiles import raise_open_files
from server.errors import ApiError, TooManyRequests, retry_after
from server.realtime.tally import StreamTally

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
RESERVE_MIN = 128  # descriptors kept for Redis, the listener and ordinary requests


def capacity(wanted: int | None) -> int:
    """How many streams this process can hold (at most `wanted`, when given): its
    open-files limit raised to the hard limit, less a reserve (an eighth, at least
    `RESERVE_MIN`) for its Redis connections, the listener and ordinary requests."""
    soft = raise_open_files()
    usable = max(0, soft - max(RESERVE_MIN, soft // 8))
    if wanted is not None and usable < wanted:
        logger.warning(
            "open-files limit %d: this process holds at most %d streams (of %d asked)",
            soft, usable, wanted,
        )  # fmt: skip
    return usable if wanted is None else min(wanted, usable)


class StreamsExhausted(ApiError):
    status_code = 503
    code = "STREAMS_EXHAUSTED"


class Gate:
    def __init__(self, limit: int, tally: StreamTally) -> None:
        self.limit = limit
        self.tally = tally  # each user's streams, across processes
        self.open: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # events sent, by transport
        self.refused: Counter[str] = Counter()  # by why: "full", "per_user"
        self.polls = 0  # status requests answered (200 or 304)
        self._refusing = 0  # refusals in this episode of being full

    @property
    def full(self) -> bool:
        return self.open.total() >= self.limit

    async def admit(self, transport: str, user: str) -> Admission:
        """Count a new stream of `user`, or refuse it; release the admission when the
        stream ends. Counted in this process before the first await (concurrent opens
        cannot all pass `full`), then among the user's streams of every process."""
        self.check(user)
        self.open[transport] += 1
        try:
            claimed = await self.tally.claim(user)
        except BaseException:
            self.open[transport] -= 1
            raise
        if not claimed:
            self.open[transport] -= 1
            raise self._too_many()
        return Admission(self, transport, user)

    def check(self, user: str) -> None:
        """Refuse now, with no round trip, what `admit` would refuse for sure (before a
        stream's reads are made)."""
        if self.full:
            self.refused["full"] += 1
            if not self._refusing:
                logger.warning("this process holds its %d streams: new ones get 503", self.limit)
            self._refusing += 1
            raise StreamsExhausted(
                f"this process holds its maximum of {self.limit} streams; retry shortly",
                headers=retry_after(RETRY_AFTER_S),
            )
        if self.tally.held[user] >= self.tally.per_user:
            raise self._too_many()

    def _too_many(self) -> TooManyRequests:
        self.refused["per_user"] += 1
        return TooManyRequests(
            f"at most {self.tally.per_user} open streams per user; close one first",
            code="TOO_MANY_STREAMS",
            headers=retry_after(RETRY_AFTER_S),
        )

    def _release(self, transport: str, user: str) -> None:
        self.open[transport] -= 1
        self.tally.release(user)
        if self._refusing and not self.full:
            logger.warning("streams admitted again, after %d refused", self._refusing)
            self._refusing = 0


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
