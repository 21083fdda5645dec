"""The in-run baseline: a minimal shared-hub SSE server, for the benchmarks' ratios.

    python -m bench.baseline --port 8100      # REDIS_URL in the environment

One Redis pub/sub connection for the process (our `Hub`), sse-starlette for the
responses, and nothing else: no authentication, no task record read, no snapshot, no
limits. `GET /events/{task_id}` subscribes, sends a `ready` event, then every message of
the task's channel as it comes. What Taskstream costs beyond this is what the benchmarks
report as a ratio.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.realtime.hub import Hub


def app_for(redis_url: str) -> Starlette:
    hub = Hub(redis_url, 256, name="taskstream:baseline:hub")

    async def events(request: Request) -> Response:
        task_id = request.path_params["task_id"]

        async def body() -> AsyncIterator[dict[str, str]]:
            async with hub.listen(task_id) as listener:
                yield {"event": "ready", "data": "{}"}
                while not listener.closing:
                    await listener.wait()
                    events, listener.queue = listener.queue, []
                    for event in events:
                        yield {"id": event.id, "event": event.type, "data": event.data}
                        if event.terminal:
                            return

        return EventSourceResponse(body(), ping=15)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.stop()

    return Starlette(routes=[Route("/events/{task_id}", events)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=2048)
    args = parser.parse_args()
    app = app_for(os.environ["REDIS_URL"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", backlog=args.backlog)


if __name__ == "__main__":
    main()
