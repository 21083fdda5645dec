"""A reverse proxy as a process of its own, as nginx would stand before the web process:
`python -m tests.proxy <listen-port> <upstream-port>`. Each connection carries one request,
passed on with `X-Forwarded-For: <the visitor's address>` and `Connection: close`; a
visitor's own forwarding headers are replaced, as a proxy set up that way does."""

from __future__ import annotations

import asyncio
import contextlib
import sys

DROPPED = (b"connection:", b"x-forwarded-for:", b"forwarded:", b"x-real-ip:")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def forward(upstream: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    visitor = writer.get_extra_info("peername")[0]
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return
    lines = [line for line in head.split(b"\r\n") if line]
    kept = [line for line in lines[1:] if not line.lower().startswith(DROPPED)]
    added = [b"X-Forwarded-For: " + visitor.encode(), b"Connection: close"]
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    up_writer.write(b"\r\n".join([lines[0], *kept, *added]) + b"\r\n\r\n")
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    writer.close()
    up_writer.close()


async def main(listen: int, upstream: int) -> None:
    server = await asyncio.start_server(lambda r, w: forward(upstream, r, w), "127.0.0.1", listen)
    sys.stdout.write("proxy ready\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
