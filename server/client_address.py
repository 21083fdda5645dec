"""Who is on the other end: the client's address as this server believes it (a forwarded
address only from `TASKSTREAM_TRUSTED_PROXIES`: `server/serve.py`), and whether it is on
this machine.

"On this machine" is the TCP peer's say alone, and a request that a proxy passed on is
never local, wherever the proxy is: behind a proxy on this host every visitor arrives from
127.0.0.1, and a forwarded address can be anything a client writes.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.requests import HTTPConnection

from server.state import app_state

logger = logging.getLogger(__name__)

FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip")  # what proxies add


def client_of(conn: HTTPConnection) -> str:
    """The client's address: the TCP peer's, or what a trusted proxy forwarded. Requests
    passed on by a proxy that is not trusted all count as the proxy (said once a process)."""
    if is_forwarded(conn) and not app_state(conn)["settings"].trusted_proxies:
        _warn_untrusted_proxy(conn)
    return conn.client.host if conn.client else "unknown"


def is_forwarded(conn: HTTPConnection) -> bool:
    return any(name in conn.headers for name in FORWARDING)


def is_local(conn: HTTPConnection) -> bool:
    """The client is on this machine: a loopback peer that passed nothing on."""
    if is_forwarded(conn) or conn.client is None:
        return False
    try:
        return ipaddress.ip_address(conn.client.host).is_loopback
    except ValueError:
        return False


_warned: list[str] = []  # the first untrusted proxy's address, once said


def _warn_untrusted_proxy(conn: HTTPConnection) -> None:
    if _warned:
        return
    peer = conn.client.host if conn.client else "unknown"
    _warned.append(peer)
    logger.warning(
        "requests arrive through a proxy at %s that TASKSTREAM_TRUSTED_PROXIES does not "
        "name: every visitor counts as %s (one rate-limit bucket for all); name the proxy",
        peer,
        peer,
    )
