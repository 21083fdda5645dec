"""Fair dispatch between users, on top of ARQ's queue.

ARQ runs due jobs in the order they were queued, so 60 accounts that queue 1,200 tasks
take every worker slot, and a user who then asks for one task waits behind all of them
(93 s measured). Here a user's job does not go to ARQ's queue at once: it is parked (in
ARQ's form, under `<queue>:parked`, which no worker reads) and put at the end of its
owner's own list. Workers, as slots free up, move jobs into ARQ's queue one owner at a
time, round-robin by tag (start-time fair queuing): each owner has a tag, the number of
turns they have had; the owner with the lowest tag goes next and their tag grows by one.
An owner who arrives with nothing queued starts at the tag last served (or their own, if
higher: leaving and coming back buys no turns), so a user with one task starts before a
user with a hundred, whatever arrived first, and at most one job per busier owner goes
ahead of it.

A worker moves only as many jobs as it has free slots, less those it moved that no worker
has started yet (`Dispatcher`), so the queue ARQ reads stays short and the order is
decided here. Retries and
deferrals (ARQ's own `Retry`) go straight back to ARQ's queue: a started task keeps its
place. Account mail has a queue of its own and no owner: never parked.
"""

from __future__ import annotations

import time
from pathlib import Path

from arq.utils import timestamp_ms
from redis.asyncio import Redis

from jobs.infra.connections import Script

TAG_KEPT_S = 3600  # how long a drained owner's tag is remembered
MOVED_FOR_S = 2.0  # ARQ polls every 0.1 s: a job moved is started long before this
SCRIPT = (Path(__file__).parent / "fair.lua").read_text()


class FairQueue:
    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.queue_name = queue_name
        self.parked = f"{queue_name}:parked"  # ARQ's queue name for parked jobs
        self._prefix = f"{queue_name}:fair:"
        self._keys = [queue_name, self.parked, self._prefix + "ring", self._prefix + "served"]
        self._script = Script(redis, SCRIPT)

    async def park(self, owner: str, task_id: str) -> None:
        """Queue the owner's job (enqueued under `parked`) behind their others."""
        await self._script(self._keys, ["park", self._prefix, owner, task_id])

    async def dispatch(self, room: int) -> list[str]:
        """Make up to `room` jobs due in ARQ's queue, one owner at a time: their ids."""
        if room <= 0:
            return []
        args: list[str | int] = ["dispatch", self._prefix, room, timestamp_ms(), TAG_KEPT_S]
        moved: list[str] = await self._script(self._keys, args)
        return moved

    async def unpark(self, task_id: str) -> bool:
        """Make a parked job due at once (it was cancelled); False if it was not parked."""
        return bool(await self._script(self._keys, ["unpark", self._prefix, task_id]))


class Dispatcher:
    """One worker's side: it moves as many jobs as it has free slots, less those it moved
    that have not started (another worker may start one: counted at most `MOVED_FOR_S`)."""

    def __init__(self, fair: FairQueue, slots: int) -> None:
        self.fair = fair
        self.slots = slots
        self.moved: dict[str, float] = {}  # task id → when it was moved

    def started(self, task_id: str) -> None:
        self.moved.pop(task_id, None)

    async def __call__(self, running: int) -> None:
        now = time.monotonic()
        self.moved = {t: at for t, at in self.moved.items() if now - at < MOVED_FOR_S}
        for task_id in await self.fair.dispatch(self.slots - running - len(self.moved)):
            self.moved[task_id] = now
