"""What a job raises to end its task, and how the lifecycle treats it.

JobError            permanent: the task ends `failed` with `code` and `message`
└── TransientError  retried with backoff while attempts remain, then `failed`
"""

from __future__ import annotations


class JobError(Exception):
    """The job cannot finish; the task fails with this code and a message for the user."""

    code = "JOB_FAILED"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TransientError(JobError):
    """Worth another try: an upstream that is unavailable, rate-limited or timed out."""

    code = "UPSTREAM_UNAVAILABLE"


class TaskGone(Exception):
    """The task ended elsewhere (cancelled, or taken over by a newer attempt): stop working."""
