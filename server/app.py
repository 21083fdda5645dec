"""The web application: routes, exception handlers and lifespan, wired together."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from jobs import kinds
from jobs.infra.config import Settings
from server.api import (
    auth,
    business_plan,
    exports,
    health,
    mailbox,
    metrics,
    openapi,
    starts,
    tasks,
)
from server.cors import Cors
from server.deadline import AnswerDeadline
from server.errors import EXCEPTION_HANDLERS
from server.headers import SecurityHeaders
from server.lifespan import Stopping, lifespan_for
from server.realtime import sse, ws
from server.realtime.handover import with_handover
from server.static_files import STATIC


def page(path: str, name: str, media_type: str | None = None) -> Route:
    """A static page at a path of the web app (the links in mails point at some)."""

    async def serve(request: Request) -> Response:
        return FileResponse(STATIC / name, media_type=media_type)

    return Route(path, serve)


class App(Starlette):
    """Starlette, with the streams it answers run outside its middleware stack, and the
    security headers and the cross-origin grants on every answer, Starlette's own 500
    included (outside the stack)."""

    def __init__(self, origins: tuple[str, ...] = (), **options: Any) -> None:
        super().__init__(**options)
        self.secured = SecurityHeaders(Cors(super().__call__, origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await with_handover(self.secured, scope, receive, send)


def create_app(settings: Settings | None = None, stopping: Stopping | None = None) -> Starlette:
    """The web app; a missing `REDIS_URL` or signing key fails here, at start-up. Logging
    is the process's to configure (`taskstream`'s entry point does it once)."""
    settings = settings or Settings.from_env()
    settings.require_redis_url()
    settings.require_secret()
    registry = kinds.load(settings.extra_kinds)
    return App(
        settings.cors_origins,
        routes=[
            *health.routes,
            *metrics.routes,
            *tasks.routes,
            *tasks.kind_routes(registry),
            *starts.routes_for(registry),
            *business_plan.routes,
            *exports.routes,
            *sse.routes,
            *ws.routes,
            *auth.routes,
            *mailbox.routes_for(settings),
            *openapi.routes,
            page("/", "index.html"),
            page("/signup", "index.html"),
            page("/verify-email", "verify-email.html"),
            page("/reset-password", "reset-password.html"),
            page("/docs", "docs.html"),
            page("/favicon.ico", "favicon.svg", "image/svg+xml"),  # where browsers look first
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        # Stream bodies run after this stack has returned (`realtime/handover.py`): a
        # middleware here sees a stream's start, never its body; one that must wrap the
        # body (tracing, compression) does not belong here.
        middleware=[Middleware(AnswerDeadline, seconds=settings.answer_within_s)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan_for(settings, registry, stopping),
    )
