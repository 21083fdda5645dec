"""`/dev/mail` (under `taskstream up`): caught mails hold reset links, so only a client on
this machine sees them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from jobs.infra.config import Settings
from server.app import create_app


@pytest.mark.parametrize(
    ("client", "status"),
    [("127.0.0.1", 200), ("::1", 200), ("192.0.2.7", 404), ("10.0.0.8", 404), ("", 404)],
)
async def test_caught_mail_is_shown_only_to_a_client_on_this_machine(
    tmp_path: Path, settings: Settings, client: str, status: int
):
    (tmp_path / "1.eml").write_bytes(
        b"To: a@example.com\r\nSubject: reset\r\n\r\nhttp://x/?token=1\r\n"
    )
    app = create_app(replace(settings, mail_catcher_dir=str(tmp_path)))
    transport = httpx.ASGITransport(app=app, client=(client, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
        response = await http.get("/dev/mail")
    assert response.status_code == status
    assert ("token=1" in response.text) == (status == 200)
    if status == 404:
        assert response.json()["success"] is False


def test_without_a_catcher_there_is_no_mailbox_at_all(settings: Settings):
    assert settings.mail_catcher_dir is None
    paths = {getattr(route, "path", None) for route in create_app(settings).routes}
    assert "/dev/mail" not in paths and "/api/v1/tasks" in paths
