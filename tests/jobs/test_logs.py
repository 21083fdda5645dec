"""Structured logs: secrets that can ride in a URL never reach a log line."""

from __future__ import annotations

import json
import logging

from jobs.logs import JsonFormatter


def test_log_lines_mask_tokens_and_tickets_in_urls():
    record = logging.makeLogRecord(
        {"msg": '%s - "GET %s HTTP/1.1" %d',
         "args": ("127.0.0.1:5", "/reset-password?token=abc-DEF_1&x=1", 200)}
    )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert "abc-DEF_1" not in line["msg"] and "token=[redacted]&x=1" in line["msg"]
    record.args = ("127.0.0.1:5", "/api/v1/tasks/t/events?ticket=T0k3n", 200)
    assert "T0k3n" not in json.loads(JsonFormatter().format(record))["msg"]
