"""What every benchmark's servers share: their environment."""

from __future__ import annotations

import os
import secrets


def server_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Web and worker settings for a bench run: one signing key for the run, and signup
    limits out of the way (the load generator signs up from one address)."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "TASKSTREAM_SECRET_KEY": secrets.token_urlsafe(32),
        "TASKSTREAM_RATE_SIGNUP_PER_CLIENT": "1000000",
        **extra,
    }
