"""`/openapi.json` describes the service, and schemathesis, fuzzing it from that document,
finds no server error and no answer outside it."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

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


HOSTILE = {
    "nested-1000-deep": "[" * 1000 + "]" * 1000,
    "a-5000-digit-number": '{"steps": ' + "9" * 5000 + "}",
    "nan": '{"email": NaN}',
    "out-of-range": '{"horizonMonths": 1e999}',
    "not-utf-8": b'{"email": "\xff"}',
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE)
async def test_every_documented_body_refuses_hostile_json_with_a_4xx_envelope(
    client: httpx.AsyncClient, body: str | bytes
):
    """What the fuzzer does not generate, sent to every operation that takes a body."""
    spec = (await client.get("/openapi.json")).json()
    tried = 0
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if "requestBody" not in op:
                continue
            url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
            answer = await client.request(method, url, content=body)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            assert answer.json()["success"] is False, path
            tried += 1
    assert tried >= 10  # signup, login, … every task start
