"""`/openapi.json` describes the service, and schemathesis, fuzzing it from that document,
finds no server error and no answer outside it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support import WAIT, Proc

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance",
])  # fmt: skip


async def test_the_document_lists_every_endpoint_with_its_request_models(client: httpx.AsyncClient):
    spec = (await client.get("/openapi.json", headers={"Authorization": ""})).json()
    assert spec["openapi"].startswith("3.1")
    generate = spec["paths"]["/api/v1/business-plan/generate"]["post"]
    body = generate["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    required = spec["components"]["schemas"][body.split("/")[-1]]["required"]
    assert {"projectName", "problem", "solution"} <= set(required)
    assert {"202", "401", "413", "422", "429"} <= set(generate["responses"])
    for path in ("/api/v1/auth/signup", "/api/v1/exports/{task_id}/download", "/api/v1/events"):
        assert path in spec["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    private: Callable[..., Proc], tmp_path: Path
):
    web = private("web")  # no worker: what the fuzzing starts stays queued, costing nothing
    fields = {"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "password": "fuzzing!",
              "name": "fuzz"}  # fmt: skip
    signed = httpx.post(f"{web.url}/api/v1/auth/signup", json=fields, timeout=WAIT).json()
    token = signed["data"]["tokens"]["accessToken"]
    done = subprocess.run(
        [SCHEMATHESIS, "run", f"{web.url}/openapi.json", "--checks", CHECKS,
         "--header", f"Authorization: Bearer {token}",
         "--exclude-path-regex", "events$",  # streams that end only with their tasks
         "--exclude-path", "/api/v1/auth/logout",  # would end the fuzzer's own session
         "--max-examples", "30", "--seed", "20261126", "--report-dir", str(tmp_path),
         "--max-response-time", str(WAIT)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,  # its cache stays there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
