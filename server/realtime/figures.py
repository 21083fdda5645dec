"""This web process's stream figures, shared with the other web processes' `/metrics`.

With several web processes on one port (`taskstream web --processes N`), a scrape reaches
one of them at random; each publishes its figures every `EVERY_S` under
`ts:metrics:web:<host:pid>` with a TTL (a dead process drops out), so that any of them
reports every live one's, labelled `process`. The answering process reports its own live.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from jobs.infra import metrics
from server.realtime.gate import Gate
from server.realtime.hub import Hub

logger = logging.getLogger(__name__)

EVERY_S = 2.0


def figures(gate: Gate, hub: Hub) -> dict[str, float]:
    """Flat: `open|sse`, `delivered|ws`, `refused|full`, `lag|<bound>`, `capacity`, …"""
    found: dict[str, float] = {
        "capacity": gate.limit,
        "polls": gate.polls,
        "hub_reconnects": hub.reconnects,
        "hub_channels": hub.channel_count,
        "lag_sum": hub.lag_sum_ms,
    }
    for transport in ("sse", "ws"):
        found[f"open|{transport}"] = gate.open[transport]
        found[f"delivered|{transport}"] = gate.delivered[transport]
    for why in ("full", "per_user"):
        found[f"refused|{why}"] = gate.refused[why]
    for bound, count in hub.lag_ms.items():
        found[f"lag|{bound:g}"] = count
    return found


async def publish_every(redis: Redis, gate: Gate, hub: Hub) -> None:
    """Until cancelled: this process's figures, for the others to report."""
    while True:
        try:
            await metrics.publish(redis, metrics.WEBS, figures(gate, hub), int(EVERY_S * 5))
        except Exception as error:  # an outage: the next turn tries again
            logger.warning("the web figures could not be published: %s", error)
        await asyncio.sleep(EVERY_S)
