"""Behind a reverse proxy on the same host (a real forwarding process, `tests/proxy.py`):
the pages for this machine only stay private, visitors are told apart once the proxy is
named, and a proxy left unnamed is said in the log. A process that would believe every
client's forwarded address on a public listener does not start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from taskstream.embedded import free_port
from tests.server.test_auth import address
from tests.support import ROOT, WAIT, Proc
from tests.test_cli import web_at_start_up

SIGNUP = "/api/v1/auth/signup"


@pytest.fixture
def proxy_to(tmp_path: Path) -> Iterator[Callable[[Proc], str]]:
    """A proxy process in front of a web process: its URL."""
    started: list[subprocess.Popen[str]] = []

    def start(web: Proc) -> str:
        port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, "-m", "tests.proxy", str(port), str(web.port)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(proxy)
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == "proxy ready"
        return f"http://127.0.0.1:{port}"

    yield start
    for proxy in started:
        proxy.terminate()
        proxy.wait(WAIT)
        assert proxy.stdout is not None
        proxy.stdout.close()


def visitor(url: str, at: str) -> httpx.AsyncClient:
    """A client whose connections come from `at` (another loopback address: another
    visitor, as the proxy sees it)."""
    transport = httpx.AsyncHTTPTransport(local_address=at)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=WAIT)


async def signups(http: httpx.AsyncClient, count: int) -> list[int]:
    body = {"password": "a long enough one", "name": "Visitor"}
    return [
        (await http.post(SIGNUP, json=body | {"email": address()})).status_code
        for _ in range(count)
    ]


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""], ids=["named", "unnamed"])
async def test_behind_a_proxy_the_local_pages_stay_private_and_visitors_apart(
    private: Callable[..., Proc],
    proxy_to: Callable[[Proc], str],
    tmp_path: Path,
    trusted: str,
):
    web = private(
        "web",
        TASKSTREAM_TRUSTED_PROXIES=trusted,
        TASKSTREAM_MAIL_CATCHER_DIR=str(tmp_path),
        TASKSTREAM_RATE_SIGNUP_PER_CLIENT="2",
        TASKSTREAM_RATE_WINDOW_SECONDS="3595",
    )
    url = proxy_to(web)
    async with visitor(url, "127.0.0.2") as first, visitor(url, "127.0.0.3") as second:
        for page in ("/dev/mail", "/metrics"):
            assert (await first.get(page)).status_code == 404, page
            spoofed = await first.get(page, headers={"X-Forwarded-For": "127.0.0.1"})
            assert spoofed.status_code == 404, page
        assert await signups(first, 3) == [201, 201, 429]
        # named, the proxy's visitors each have their own limits; unnamed, they share
        assert await signups(second, 1) == ([201] if trusted else [429])
    async with httpx.AsyncClient(base_url=web.url) as here:  # on this machine, no proxy
        assert (await here.get("/dev/mail")).status_code == 200
        assert (await here.get("/metrics")).status_code == 200
        refused = await here.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
        assert refused.status_code == 404  # passed on by something: not this machine's
    warned = "TASKSTREAM_TRUSTED_PROXIES does not name" in web.log.read_text()
    assert warned == (not trusted)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_trusting_every_proxy_on_a_public_listener_stops_at_start_up(host: str):
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "TASKSTREAM_TRUSTED_PROXIES": "*"}
    done = web_at_start_up(env, "--host", host)
    assert done.returncode == 1
    assert "TASKSTREAM_TRUSTED_PROXIES=*" in done.stderr and "name the proxies" in done.stderr
