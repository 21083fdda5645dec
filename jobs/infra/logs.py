"""Structured logs: one JSON object a line, with the taskId of the job being run.

`configure()` is called once at start-up by each process. Inside a job, `bind_task()`
sets the task id in a context variable that the formatter adds to every line, so no call
site has to pass it. Secrets that can appear in a URL (a mailed `token`, a stream
`ticket`, an `access_token`, any parameter whose name says it holds a secret) are masked
in every line, the access log's request lines and string fields included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from urllib.parse import unquote

_task_id: ContextVar[str | None] = ContextVar("task_id", default=None)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# any parameter whose name ends in a word for a secret: token, access_token, api_key, …
SECRET_IN_URL = re.compile(
    r"\b([\w.-]*(?:token|ticket|secret|password|passwd|key|signature|credential|code))"
    r"=[^&\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    if "=" not in text:  # most lines: no parameter, nothing to mask (and no regex to run)
        return text
    if "%" in text:  # `?tick%65t=` is `?ticket=` to the server: masked as that
        text = unquote(text)
    return SECRET_IN_URL.sub(r"\1=[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        task_id = _task_id.get()
        if task_id is not None:
            line["taskId"] = task_id
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        line.update({k: redact(v) if isinstance(v, str) else v for k, v in extra.items()})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    # no line shows its caller's file, thread or process: not looking them up saves a
    # stack walk per line (the access log writes one per request, a stream open included)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


@contextmanager
def bind_task(task_id: str) -> Iterator[None]:
    token = _task_id.set(task_id)
    try:
        yield
    finally:
        _task_id.reset(token)
