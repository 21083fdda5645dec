"""A local server that speaks Gemini's REST protocol, scripted by each test.

The real `google-genai` SDK is pointed at it (`GEMINI_BASE_URL`). Each request to
`…:generateContent` or `…:streamGenerateContent?alt=sse` takes the next scripted reply:
a stream of text chunks (optionally slow, or stalling), a JSON answer, or an error body
as Gemini sends them. It runs uvicorn in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from taskstream.embedded import free_port


@dataclass(frozen=True)
class Stream:
    chunks: list[str]
    delay: float = 0.0
    stall_after: int | None = None  # chunks sent before it stops answering


@dataclass(frozen=True)
class Answer:
    text: str


@dataclass(frozen=True)
class Failure:
    status: int
    message: str = "scripted failure"


STATUS_NAMES = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE"}  # fmt: skip


def _chunk(text: str, last: bool = False) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                 "index": 0}  # fmt: skip
    if last:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "modelVersion": "fake-gemini"}


@dataclass
class FakeGemini:
    port: int = field(default_factory=free_port)
    replies: deque[Stream | Answer | Failure] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Stream | Answer | Failure) -> None:
        self.replies.clear()
        self.requests.clear()
        self.disconnected.clear()
        self.replies.extend(replies)

    async def _handle(self, request: Request) -> Response:
        action = request.path_params["action"]
        self.requests.append({"action": action, "body": await request.json()})
        reply = self.replies.popleft() if self.replies else Failure(500, "nothing scripted")
        if isinstance(reply, Failure):
            error = {"code": reply.status, "message": reply.message,
                     "status": STATUS_NAMES.get(reply.status, "UNKNOWN")}  # fmt: skip
            return JSONResponse({"error": error}, status_code=reply.status)
        if isinstance(reply, Answer):
            return JSONResponse(_chunk(reply.text, last=True))
        return StreamingResponse(self._stream(request, reply), media_type="text/event-stream")

    async def _stream(self, request: Request, reply: Stream) -> Any:
        finished = False
        try:
            for index, text in enumerate(reply.chunks):
                if reply.stall_after is not None and index >= reply.stall_after:
                    while not await request.is_disconnected():
                        await asyncio.sleep(0.05)
                    return
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                last = index == len(reply.chunks) - 1
                yield f"data: {json.dumps(_chunk(text, last))}\r\n\r\n"
            finished = True
        finally:
            if not finished:
                self.disconnected.set()

    def start(self) -> None:
        app = Starlette(routes=[Route("/{version}/models/{action}", self._handle,
                                      methods=["POST"])])  # fmt: skip
        config = uvicorn.Config(app, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            self.thread.join(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
