"""Who is on the other end: the client's address as this server believes it (a forwarded
address only from `TASKSTREAM_TRUSTED_PROXIES`, see `taskstream/cli.py`)."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection


def client_of(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def is_local(conn: HTTPConnection) -> bool:
    """The client is on this machine (loopback)."""
    try:
        return ipaddress.ip_address(client_of(conn)).is_loopback
    except ValueError:
        return False
