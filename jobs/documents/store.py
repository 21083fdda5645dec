"""Where exported files live, behind one interface: a directory (the default), or an
S3-compatible bucket (`TASKSTREAM_EXPORT_STORE=s3://bucket/prefix`).

A directory must be shared by every web process and worker (a volume). A bucket is reached
by each over the network, so a web process on one machine serves the file a worker on
another wrote. The worker renders a document into a local file (`scratch`) and then `put`s
it: renamed into place in a directory, uploaded from the file in parts to a bucket (neither
holds the file in memory); either way a reader finds the whole file or none.

Downloads go through the web process: a directory's file by Starlette's `FileResponse`, a
bucket's object by ranged reads passed on as they come (`read`, `server/api/exports.py`).
So a download behaves the same from both (authentication first, Content-Length for the
progress bar, Range and If-Range to resume), and the bucket stays private: no presigned URL
leaves the server, no CORS rule has to be kept on the bucket. The price is the web
process's bandwidth, which a document-sized download barely touches.

A bucket is reached with boto3 (in threads), its credentials and region from AWS's usual
variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, or the
machine's role), its endpoint from `TASKSTREAM_EXPORT_S3_ENDPOINT` for a server other
than AWS's.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from jobs.infra.config import ConfigError, Settings

CHUNK = 1 << 16


class StoreUnavailable(Exception):
    """The store could not be reached or refused the request (the bucket is missing, the
    credentials are wrong): worth another try later, never half a file."""


class ExportStore(Protocol):
    def scratch(self, name: str, attempt: int) -> Path:
        """A local file for an attempt to render `name` into, before `put`."""

    async def put(self, scratch: Path, name: str, content_type: str) -> None:
        """The rendered file stored as `name`, whole (the caller removes the scratch file)."""

    async def size(self, name: str) -> int | None:
        """The stored file's size; None when there is none."""

    def read(self, name: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """The bytes `start` to `stop` (exclusive), in chunks."""

    async def names(self) -> list[str]:
        """Every file stored (for the sweep of expired exports)."""

    async def delete(self, name: str) -> None: ...


def export_store(settings: Settings) -> ExportStore:
    url = settings.export_store
    if not url:
        return Directory(Path(settings.export_dir))
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"TASKSTREAM_EXPORT_STORE: expected s3://bucket/prefix, got {url!r}")
    return Bucket(parts.netloc, parts.path.strip("/"), settings.export_s3_endpoint)


class Directory:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def scratch(self, name: str, attempt: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{name}.{attempt}.part"  # renamed in place: same file system

    async def put(self, scratch: Path, name: str, content_type: str) -> None:
        os.replace(scratch, self.folder / name)

    async def size(self, name: str) -> int | None:
        try:
            return (self.folder / name).stat().st_size
        except FileNotFoundError:
            return None

    async def read(self, name: str, start: int, stop: int) -> AsyncIterator[bytes]:
        with (self.folder / name).open("rb") as file:
            file.seek(start)
            while start < stop:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, stop - start))
                if not chunk:
                    return
                start += len(chunk)
                yield chunk

    async def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [path.name for path in self.folder.iterdir()]

    async def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)


class Bucket:
    def __init__(self, bucket: str, prefix: str, endpoint: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
        self._s3: Any = boto3.client("s3", endpoint_url=endpoint, config=config)

    def _key(self, name: str) -> str:
        return self.prefix + name

    def scratch(self, name: str, attempt: int) -> Path:
        return Path(tempfile.gettempdir()) / f"taskstream-{name}.{attempt}.part"

    async def put(self, scratch: Path, name: str, content_type: str) -> None:
        """Uploaded from the file: in parts past boto3's threshold (8 MiB), so a large file
        is never read whole; an object appears only once every part is in."""
        extra = {"ContentType": content_type}
        async with self._errors("store the file"):
            await asyncio.to_thread(
                self._s3.upload_file, str(scratch), self.bucket, self._key(name), extra
            )

    async def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        async with self._errors("read the file"):
            try:
                head = await asyncio.to_thread(
                    self._s3.head_object, Bucket=self.bucket, Key=self._key(name)
                )
            except ClientError as error:
                if _code(error) in MISSING:
                    return None
                raise
        size: int = head["ContentLength"]
        return size

    async def read(self, name: str, start: int, stop: int) -> AsyncIterator[bytes]:
        async with self._errors("read the file"):
            answer = await asyncio.to_thread(
                self._s3.get_object,
                Bucket=self.bucket,
                Key=self._key(name),
                Range=f"bytes={start}-{stop - 1}",
            )
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def names(self) -> list[str]:
        def listed() -> list[str]:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            return [
                item["Key"][len(self.prefix) :]
                for page in pages
                for item in page.get("Contents", [])
            ]

        async with self._errors("list the files"):
            found = await asyncio.to_thread(listed)
        return found

    async def delete(self, name: str) -> None:
        async with self._errors("remove the file"):
            await asyncio.to_thread(self._s3.delete_object, Bucket=self.bucket, Key=self._key(name))

    @asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        """boto3's errors (after its own retries) as `StoreUnavailable`, naming the bucket."""
        from boto3.exceptions import Boto3Error  # an upload's (S3UploadFailedError)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error) as error:
            detail = _code(error) if isinstance(error, ClientError) else str(error)
            raise StoreUnavailable(f"could not {what} in bucket {self.bucket}: {detail}") from error


MISSING = {"404", "NoSuchKey", "NotFound"}


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))
