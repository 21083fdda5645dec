"""`/dev/mail`: the mails `taskstream up`'s catcher kept, newest first, links clickable.

Mounted only when `TASKSTREAM_MAIL_CATCHER_DIR` is set (by `taskstream up`; never in
production), and shown only to a client on this machine: its mails hold reset links, so
with `up --host 0.0.0.0` anyone on the network could otherwise take over any account.
"""

from __future__ import annotations

import html
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from jobs.infra.config import Settings
from server.client_address import is_local
from server.errors import NotFound

LINK = re.compile(r"https?://[^\s<>\"]+")
SHOWN = 50


def render(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    text = html.escape(body.get_content() if body is not None else "")
    linked = LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', text)
    fields = (html.escape(str(message[h] or "")) for h in ("Date", "To", "Subject"))
    date, to, subject = fields
    return (
        f"<article><h2>{subject}</h2><p><small>{date} → {to}</small></p>"
        f"<pre>{linked}</pre></article>"
    )


def routes_for(settings: Settings) -> list[Route]:
    if not settings.mail_catcher_dir:
        return []
    folder = Path(settings.mail_catcher_dir)

    async def mailbox(request: Request) -> Response:
        if not is_local(request):
            raise NotFound("Not Found")
        files = sorted(folder.glob("*.eml"), reverse=True)[:SHOWN]
        parser = BytesParser(policy=policy.default)
        articles = [render(parser.parsebytes(f.read_bytes())) for f in files]
        page = (
            '<!doctype html><html lang="ko"><meta charset="utf-8"><title>Caught mail</title>'
            "<h1>Caught mail</h1><p>Mails sent by this local Taskstream; none left the machine."
            "</p>" + ("".join(articles) or "<p>No mail yet.</p>")
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    return [Route("/dev/mail", mailbox)]
