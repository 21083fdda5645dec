"""A real SMTP server (aiosmtpd) for the tests, whose answers depend on the recipient.

someone@…          accepted
someone+flaky@…    451 the first time, accepted the next
someone+reject@…   550, always
"""

from __future__ import annotations

import asyncio
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller

from taskstream.embedded import free_port
from tests.support import WAIT


class Recorder:
    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipient = envelope.rcpt_tos[0]
        if "+reject@" in recipient:
            return "550 5.1.1 no such mailbox"
        with self.lock:
            if "+flaky@" in recipient and recipient not in self.refused:
                self.refused.append(recipient)
                return "451 4.3.0 try again later"
            parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
            self.received.append(parsed)
            waiters = list(self.waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return "250 OK"


class MailServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str, about: str = "") -> list[EmailMessage]:
        with self.recorder.lock:
            received = self.recorder.received
            return [m for m in received if m["To"] == address and about in m["Subject"]]

    async def mail_for(self, address: str, count: int = 1, about: str = "") -> EmailMessage:
        """The `count`-th mail to `address` (whose subject has `about`), once it has arrived
        (bounded by WAIT). Mails of concurrent tasks arrive in any order."""
        arrived = asyncio.Event()
        waiter = (asyncio.get_running_loop(), arrived)
        with self.recorder.lock:
            self.recorder.waiters.append(waiter)
        try:
            async with asyncio.timeout(WAIT):
                while len(self.to(address, about)) < count:
                    await arrived.wait()
                    arrived.clear()
        finally:
            with self.recorder.lock:
                self.recorder.waiters.remove(waiter)
        return self.to(address, about)[count - 1]
