"""The names of the Redis keys on `REDIS_URL` (the queue's server), in one place: accounts,
logins, plans, limits, the worker's leases and metrics. The task record's keys and
channels, on the streams store (`TASKSTREAM_STREAMS_URL`), are named in
`jobs/record/keys.py`; ARQ names its own.
"""

from __future__ import annotations

# accounts (`jobs/accounts.py`)


def user(user_id: str) -> str:
    """A hash of the account's fields."""
    return f"ts:user:{user_id}"


def user_by_email(normalized_email: str) -> str:
    return f"ts:user-email:{normalized_email}"


def mail_token(purpose: str, token_digest: str) -> str:
    """A mailed token (verification, reset) → its user, until it expires or is used."""
    return f"ts:mail-token:{purpose}:{token_digest}"


def mail_tokens(purpose: str, user_id: str) -> str:
    """The digests of a user's outstanding tokens for `purpose`."""
    return f"ts:mail-tokens:{purpose}:{user_id}"


# logins (`server/auth.py`, `server/realtime/sessions.py`)


def refresh(token_digest: str) -> str:
    return f"ts:refresh:{token_digest}"


def login_families(user_id: str) -> str:
    """The user's logins (token families), to end them all at a password reset."""
    return f"ts:user:{user_id}:families"


def revoked(family: str) -> str:
    """Set (with the longest token's lifetime) once a login's tokens are revoked."""
    return f"ts:token-family:{family}:revoked"


def ticket(ticket_digest: str) -> str:
    """A single-use stream ticket."""
    return f"ts:ticket:{ticket_digest}"


# limits (`server/ratelimit.py`, `server/submit.py`, `server/realtime/tally.py`)


def rate(action: str, scope: str, window: int) -> str:
    return f"ts:rate:{action}:{scope}:{window}"


def known_client(email_digest: str, client: str) -> str:
    """A client that signed in to this address before: not slowed down as a stranger."""
    return f"ts:known-client:{email_digest}:{client}"


def idempotency(owner: str, key_digest: str) -> str:
    return f"ts:idempotency:{owner}:{key_digest}"


def started(owner: str, hour: int) -> str:
    """How many tasks the user started in that clock hour."""
    return f"ts:user:{owner}:started:{hour}"


STREAM_PROCESSES = "ts:{streams}:processes"  # the web processes' leases (tally.py)


def user_streams(user_id: str) -> str:
    """A user's open streams: web process → count."""
    return f"ts:{{streams}}:user:{user_id}"


# the worker (`jobs/runtime/`)

LEASES = "ts:leases"  # running attempts' leases: task id → expiry (epoch s)


def deferrals(task_id: str) -> str:
    """How many times the job went back to the queue to wait for its owner's quota."""
    return f"ts:{{{task_id}}}:deferrals"


def user_running(owner: str) -> str:
    """A user's jobs running now: task id → lease expiry (epoch s)."""
    return f"ts:user:{owner}:running"


# plans and projects (`jobs/plans.py`)


def plan(plan_id: str) -> str:
    return f"ts:plan:{plan_id}"


def evaluation(evaluation_id: str) -> str:
    return f"ts:evaluation:{evaluation_id}"


def simulation(simulation_id: str) -> str:
    return f"ts:simulation:{simulation_id}"


def project_owner(project_id: str) -> str:
    return f"ts:project:{project_id}:owner"


def project_plans(project_id: str) -> str:
    """The project's plan ids, newest first."""
    return f"ts:project:{project_id}:plans"


def project_simulations(project_id: str) -> str:
    return f"ts:project:{project_id}:simulations"


def plan_evaluations(plan_id: str) -> str:
    return f"ts:plan:{plan_id}:evaluations"


# metrics (`jobs/infra/metrics.py`)

METRICS = "ts:metrics"  # counters and histograms, every process's
WORKER_METRICS = "ts:metrics:worker:"  # + a worker's name: its gauges
WEB_METRICS = "ts:metrics:web:"  # + a web process's name: its stream figures
