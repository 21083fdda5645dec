"""A local server that speaks Gemini's REST protocol, scripted by each test.

The real `google-genai` SDK is pointed at it (`GEMINI_BASE_URL`). Each request to
`…:generateContent` or `…:streamGenerateContent?alt=sse` takes the next scripted reply:
a stream of text chunks (optionally slow, or stalling), a JSON answer, or an error body
as Gemini sends them. It runs uvicorn in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
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


FAILURES = ("refuse", "hang", "reset", "cut", "unfinished")


@dataclass
class BrokenGemini:
    """A Gemini endpoint that fails the way networks do, below HTTP's error replies.

    `script(mode)` sets how every request fails: `refuse` (nothing listens on the port),
    `hang` (the request is read, no answer ever comes), `reset` (answer started, then a TCP
    reset), `cut` (answer started, then the connection closed mid-body), `unfinished` (a
    whole HTTP answer whose stream stops before a finish reason). A stream's partial
    answer carries text; a JSON answer is cut inside its JSON. Raw asyncio sockets, since
    no HTTP server can be asked to break a connection in these ways.
    """

    port: int = field(default_factory=free_port)
    mode: str = "hang"
    requests: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.script("hang")

    def script(self, mode: str) -> None:
        assert mode in FAILURES, mode
        asyncio.run_coroutine_threadsafe(self._switch(mode), self.loop).result(10)

    async def _switch(self, mode: str) -> None:
        self.mode, self.requests = mode, 0
        if mode == "refuse" and self.server is not None:
            self.server.close()  # the listening socket closes now; refused from here on
            self.server = None
        elif mode != "refuse" and self.server is None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            self.requests += 1
            if self.mode == "hang":
                await reader.read()  # until the client gives up
                return
            streaming = b":streamGenerateContent" in head.split(b"\r\n", 1)[0]
            body = (
                "".join(f"data: {json.dumps(_chunk(t))}\r\n\r\n" for t in ("## [exec", "utive"))
                if streaming
                else json.dumps(_chunk("{}", last=True))[:40]
            ).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")  # fmt: skip
            writer.write(b"%x\r\n%s\r\n" % (len(body), body))
            if self.mode == "unfinished":
                writer.write(b"0\r\n\r\n")
            await writer.drain()
            if self.mode == "reset":
                linger = struct.pack("ii", 1, 0)  # close with RST, not FIN
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, linger
                )
                writer.transport.abort()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _close(self) -> None:
        await self._switch("refuse")
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
