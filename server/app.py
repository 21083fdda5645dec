"""The web application: routes, exception handlers and lifespan, wired together."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from jobs import logs
from jobs.config import Settings
from server.api import (
    business_plan,
    demo,
    evaluations,
    exports,
    financial,
    health,
    metrics,
    tasks,
)
from server.errors import EXCEPTION_HANDLERS
from server.realtime import sse, ws
from server.state import lifespan_for

STATIC = Path(__file__).resolve().parent.parent / "static"


async def index(request: Request) -> Response:
    """The demo page."""
    return FileResponse(STATIC / "index.html")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    logs.configure()
    return Starlette(
        routes=[
            *health.routes,
            *metrics.routes,
            *tasks.routes,
            *demo.routes,
            *business_plan.routes,
            *evaluations.routes,
            *financial.routes,
            *exports.routes,
            *sse.routes,
            *ws.routes,
            Route("/", index),
            Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan_for(settings),
    )
