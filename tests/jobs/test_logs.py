"""Structured logs: secrets that can ride in a URL never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from jobs.infra.logs import JsonFormatter


def test_log_lines_mask_tokens_and_tickets_in_urls():
    record = logging.makeLogRecord(
        {"msg": '%s - "GET %s HTTP/1.1" %d',
         "args": ("127.0.0.1:5", "/reset-password?token=abc-DEF_1&x=1", 200)}
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert "abc-DEF_1" not in line["msg"] and "token=[redacted]&x=1" in line["msg"]
    record.args = ("127.0.0.1:5", "/api/v1/tasks/t/events?ticket=T0k3n", 200)
    assert "T0k3n" not in json.loads(JsonFormatter().format(record))["msg"]


@pytest.mark.parametrize(
    "query",
    ["access_token=S3CRET", "refresh_token=S3CRET", "api_key=S3CRET", "X-Amz-Signature=S3CRET",
     "client_secret=S3CRET", "password=S3CRET", "code=S3CRET", "a=1&id_token=S3CRET&b=2",
     "tick%65t=S3CRET", "t%6Fken=S3CRET", "%74oken=S3CRET"],
)  # fmt: skip
def test_every_parameter_named_for_a_secret_is_masked(query: str):
    record = logging.makeLogRecord({"msg": "GET /x?%s", "args": (query,), "url": f"/x?{query}"})
    line = json.loads(JsonFormatter().format(record))
    assert "S3CRET" not in line["msg"] and "=[redacted]" in line["msg"]
    assert "S3CRET" not in line["url"]


def test_parameters_that_hold_no_secret_are_kept():
    kept = "GET /api/v1/tasks?limit=20&lastEventId=1-0&tasks=a db_keys=3"
    record = logging.makeLogRecord({"msg": kept})
    assert json.loads(JsonFormatter().format(record))["msg"] == kept
