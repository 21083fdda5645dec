"""Export downloads: memory of the web process while large files stream out.

Starts Valkey and one web process, puts a large file in the export directory as a
completed export, then downloads it with several clients at once (one of them reading
slowly) and samples the web process's RSS every 50 ms. A file read whole into memory
would grow RSS by its size per download; streamed from disk it grows by a few chunks.

    .venv/bin/python -m bench.download --mib 512 --clients 4
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ready_user, server_env
from jobs.documents.files import export_name
from jobs.infra.config import Settings
from jobs.infra.connections import connect
from jobs.record.tasks import TaskStore
from taskstream.embedded import Valkey, free_port
from taskstream.loadtest.report import rss_kib

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20


def write_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as file:
        for i in range(mib):
            chunk = block[i % 256 :] + block[: i % 256]  # no two MiB alike
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


async def download(url: str, token: str, slow: bool) -> tuple[int, str, float]:
    digest = hashlib.sha256()
    size = 0
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=300, headers=headers) as http,
        http.stream("GET", url) as response,
    ):
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_raw(1 << 16):
            digest.update(chunk)
            size += len(chunk)
            if slow:
                await asyncio.sleep(0.002)  # a client on a slow line: ~30 MiB/s at most
    return size, digest.hexdigest(), time.monotonic() - started


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
    valkey = Valkey(workdir / "valkey")
    valkey.start()
    port = free_port()
    exports = workdir / "exports"
    exports.mkdir()
    env = server_env(valkey.url, TASKSTREAM_EXPORT_DIR=str(exports))
    log = (workdir / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "taskstream.cli", "web", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    redis = connect(valkey.url, "taskstream:bench")
    try:
        base = f"http://127.0.0.1:{port}"
        token, owner = await ready_user(base)
        store = TaskStore(redis, Settings.from_env({"REDIS_URL": valkey.url}))
        task = await store.create("export", owner=owner)
        sha = write_file(exports / export_name(task.id, "pdf"), args.mib)
        made = {"format": "pdf", "contentType": "application/pdf", "fileName": "큰 파일.pdf",
                "size": args.mib * CHUNK, "sha256": sha}  # fmt: skip
        await store.finish(task.id, 0, made, "/r")
        url = f"{base}/api/v1/exports/{task.id}/download"
        baseline = rss_kib(web.pid)
        peak = baseline
        downloads = [
            asyncio.create_task(download(url, token, slow=i == 0)) for i in range(args.clients)
        ]
        while not all(d.done() for d in downloads):
            peak = max(peak, rss_kib(web.pid))
            await asyncio.sleep(0.05)
        results = [d.result() for d in downloads]
        assert all(size == made["size"] and digest == sha for size, digest, _ in results)
        fast = [made["size"] / seconds / CHUNK for _, _, seconds in results[1:]]
        growth = peak - baseline
        return {
            "file_mib": args.mib,
            "clients": args.clients,
            "bytes_checked": "every download matched the file's SHA-256",
            "fast_client_mib_per_s": [round(f) for f in fast],
            "slow_client_seconds": round(results[0][2], 1),
            "rss_baseline_mib": round(baseline / 1024, 1),
            "rss_peak_mib": round(peak / 1024, 1),
            "rss_growth_mib": round(growth / 1024, 1),
            "rss_growth_over_bytes_served": f"{growth / 1024 / (args.mib * args.clients):.4f}",
        }
    finally:
        await redis.aclose()
        web.terminate()
        web.wait()
        valkey.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512, help="file size in MiB")
    parser.add_argument("--clients", type=int, default=4, help="downloads at once")
    print(json.dumps(asyncio.run(bench(parser.parse_args())), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
