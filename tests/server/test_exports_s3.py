"""Exports in S3-compatible object storage: the export tests run again against web and worker
processes whose `TASKSTREAM_EXPORT_STORE` is a bucket on a real S3 server (moto's, in server
mode, on a port of its own), with nothing on the shared directory."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from jobs.documents.store import Bucket, ExportStore, export_store
from jobs.infra.config import Settings
from tests.conftest import CREDENTIALS, new_bucket, own_deployment
from tests.server.test_exports import (  # noqa: F401  (run here, on the bucket)
    exported,
    project,
    test_a_bad_range_is_refused_in_the_envelope,
    test_a_download_of_an_export_that_did_not_complete_is_a_409_never_bytes,
    test_a_pdf_downloads_whole_with_its_headers_and_its_korean_text_extracts,
    test_an_expired_exports_file_is_swept_and_its_download_is_gone,
    test_markdown_is_utf8_text_with_every_part,
    test_ranges_give_exactly_those_bytes_and_if_range_resumes,
)
from tests.support import WAIT, Proc, wait_for_status

BUCKET = "taskstream-exports"


@pytest.fixture(scope="module")
def bucket_env(
    env: dict[str, str], s3: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    new_bucket(s3, BUCKET)
    return {
        **env,
        **CREDENTIALS,
        "TASKSTREAM_EXPORT_STORE": f"s3://{BUCKET}/exports",
        "TASKSTREAM_EXPORT_S3_ENDPOINT": s3,
        # a directory of their own, which must stay empty: the files go to the bucket
        "TASKSTREAM_EXPORT_DIR": str(tmp_path_factory.mktemp("unused-exports")),
        "TASKSTREAM_QUEUE": "ts:test:exports-s3",
    }


web, worker, account, auth = own_deployment("bucket_env")


@pytest.fixture
def exports(bucket_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ExportStore:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)  # boto3 reads them from the environment
    store = export_store(Settings.from_env(bucket_env))
    assert isinstance(store, Bucket)
    return store


async def test_the_files_are_in_the_bucket_under_the_prefix_and_not_on_disk(
    client: httpx.AsyncClient,
    project: str,  # noqa: F811  (the imported fixture)
    exports: ExportStore,
    bucket_env: dict[str, str],
):
    made = await exported(client, project, format="docx")
    name = f"{made['exportId']}.docx"
    assert name in await exports.names()
    assert await exports.size(name) == made["size"]
    assert not any(Path(bucket_env["TASKSTREAM_EXPORT_DIR"]).iterdir())


async def test_a_bucket_that_cannot_be_written_fails_the_export_clearly_and_leaves_nothing(
    private: Callable[..., Proc],
    s3: str,
    project: str,  # noqa: F811
    auth: dict[str, str],
):
    broken = {
        **CREDENTIALS,
        "TASKSTREAM_EXPORT_STORE": "s3://no-such-bucket/exports",
        "TASKSTREAM_EXPORT_S3_ENDPOINT": s3,
        "TASKSTREAM_RETRY_BACKOFF_EXPORT": "0.1",
    }
    web = private("web", **broken)
    private("worker", **broken)
    async with httpx.AsyncClient(base_url=web.url, headers=auth, timeout=WAIT) as http:
        response = await http.post(f"/api/v1/projects/{project}/export", json={"format": "md"})
        assert response.status_code == 202, response.text
        export_id = response.json()["data"]["exportId"]
        failed = await wait_for_status(http, export_id, {"failed", "completed"})
        assert (failed["status"], failed["errorCode"]) == ("failed", "EXPORT_STORE_UNAVAILABLE")
        assert failed["attempt"] == 2  # tried again, as an unavailable store may come back
        download = await http.get(f"/api/v1/exports/{export_id}/download")
        assert download.status_code == 409
    assert not list(Path(tempfile.gettempdir()).glob(f"taskstream-{export_id}*"))
