"""A local SMTP server that keeps every mail as a file, for `taskstream up`.

A new user can sign up without a mail server: the mails land in
`$TASKSTREAM_DATA_DIR/mail/*.eml`, and the web app shows them at `/dev/mail`
(`TASKSTREAM_MAIL_CATCHER_DIR`), with their links to click.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Keep:
    """aiosmtpd handler: write each message to `folder`, named by arrival."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / (name + ".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.folder / name)  # whole, or not there
        return "250 Message accepted for delivery"


class MailCatcher:
    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.host = host
        self.port = port
        self.controller = Controller(Keep(folder), hostname=host, port=port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
