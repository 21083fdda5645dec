"""Cross-origin use: the pages of other origins named in `TASKSTREAM_CORS_ORIGINS` (exact
origins; none by default) may call the API, follow streams and open WebSockets.

A pure ASGI middleware, outside Starlette (beside the security headers), so that every
answer carries the grant: errors, Starlette's own 500, and SSE streams (whose start goes
out through here before they are handed over). A preflight is answered here and never
routed: 204 with what the client may send, or, for an origin, method or header not
allowed, 403 with the envelope (`CORS_REFUSED`). An answer to an allowed origin exposes
the headers the client library reads. No cookies are involved (the API takes bearer
tokens), so no `Access-Control-Allow-Credentials`, and never `*`.

A WebSocket handshake is not covered by CORS: `origin_allowed` lets the endpoint refuse a
page of another origin (403 before accepting), so that no page elsewhere can open a
socket with a victim's ticket.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobs.infra.config import Settings
from server.errors import error_response

METHODS = ("GET", "POST", "DELETE")
# what the client library sends, and a download's conditional ranges
ALLOWED = ("authorization", "content-type", "idempotency-key", "last-event-id", "prefer",
           "if-none-match", "if-range", "range")  # fmt: skip
# what it reads beyond the safelisted few
EXPOSED = ("Retry-After", "ETag", "Content-Length", "Content-Range", "Content-Disposition",
           "Location", "Accept-Ranges")  # fmt: skip
MAX_AGE_S = 600


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" and self.origins else None
        origin = None if headers is None else headers.get("origin")
        if headers is None or origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, headers)(scope, receive, send)
            return
        granted = [(b"vary", b"Origin")]
        if origin in self.origins:
            granted += [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-expose-headers", ", ".join(EXPOSED).encode()),
            ]

        async def with_grant(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *granted]
            await send(message)

        await self.app(scope, receive, with_grant)

    def _preflight(self, origin: str, headers: Headers) -> ASGIApp:
        method = headers["access-control-request-method"]
        listed = headers.get("access-control-request-headers", "")
        asked = {h.strip().lower() for h in listed.split(",")} - {""}
        refused = (
            f"the origin {origin} is not allowed" if origin not in self.origins
            else f"the method {method} is not allowed" if method not in METHODS
            else f"the headers {', '.join(sorted(asked - set(ALLOWED)))} are not allowed"
            if asked - set(ALLOWED) else None
        )  # fmt: skip
        if refused is not None:
            return error_response(403, "CORS_REFUSED", refused, headers={"Vary": "Origin"})
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(METHODS),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED),
            "Access-Control-Max-Age": str(MAX_AGE_S),
            "Vary": "Origin",
        })  # fmt: skip


def origin_allowed(scope: Scope, settings: Settings) -> bool:
    """A WebSocket handshake's `Origin`: none (not a browser), this server's own (as the
    request reached it, or `TASKSTREAM_PUBLIC_URL`), or one named."""
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    public = urlsplit(settings.public_url)
    own = {f"{scheme}://{headers.get('host', '')}", f"{public.scheme}://{public.netloc}"}
    origin = origin.lower()
    return origin in {o.lower() for o in own} or origin in settings.cors_origins
