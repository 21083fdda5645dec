"""Configuration, read once from the environment.

Every process (web, worker, the `taskstream` command) builds one `Settings` at start-up
with `Settings.from_env()`; a missing or malformed value fails there, with the variable's
name in the message, never later in a request.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from jobs.infra.connections import ClusterTarget

# an origin as a browser sends it: a scheme, a host (a name, IPv4 or [IPv6]), maybe a port
ORIGIN = re.compile(r"https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed."""


# a kind's policy (its module states the defaults) is overridden by these, per kind
POLICY_VARIABLES = {
    "TASKSTREAM_TIMEOUT_": "timeout_s",
    "TASKSTREAM_MAX_TRIES_": "max_tries",
    "TASKSTREAM_RETRY_BACKOFF_": "retry_backoff_s",
    "TASKSTREAM_PER_WORKER_": "per_worker",
}


@dataclass(frozen=True)
class GeminiSettings:
    """The model behind generation and evaluation; no key means the offline generator."""

    api_key: str | None = None
    model: str = "gemini-2.5-flash"
    base_url: str | None = None
    timeout_s: float = 60.0
    max_output_tokens: int = 8192  # the longest answer one request may cost

    def __repr__(self) -> str:  # never print the key
        return f"GeminiSettings(model={self.model!r}, offline={self.api_key is None})"


_DEFAULT_LIMITS = {"signup": (10, 3), "login": (30, 10), "resend": (10, 3), "reset": (10, 3)}


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail goes: an SMTP server (`tls`: "none", "starttls" or "tls")."""

    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    tls: str = "none"
    sender: str = "Taskstream <no-reply@taskstream.local>"
    timeout_s: float = 20.0

    def __repr__(self) -> str:  # never print the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.tls!r})"


@dataclass(frozen=True)
class AuthSettings:
    """Tokens and rate limits. `limits` maps an action to (per client, per e-mail) counts
    allowed in each window of `window_s`."""

    secret_key: str = ""
    access_ttl_s: float = 900.0
    refresh_ttl_s: float = 30 * 24 * 3600
    ticket_ttl_s: float = 60.0
    window_s: float = 900.0
    limits: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(_DEFAULT_LIMITS))

    def __repr__(self) -> str:  # never print the secret
        return f"AuthSettings(access_ttl_s={self.access_ttl_s}, limits={dict(self.limits)})"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    streams_url: str | None = None  # the task records' store, when not REDIS_URL's (a cluster)
    data_dir: str = ".taskstream"
    retention_s: int = 24 * 3600
    stream_maxlen: int = 1000
    heartbeat_s: float = 15.0
    answer_within_s: float = 15.0  # an HTTP request's answer starts by then, or it is a 503
    request_read_s: float = 20.0  # a request arrives whole by then, or its connection closes
    max_waiting_connections_per_client: int = 256  # idle, or still sending its request
    listener_queue: int = 256
    lease_s: float = 15.0
    # how long a worker's command waits out a Redis outage before its attempt is given back
    # to the queue (run again later; `jobs/runtime/lifecycle.py`)
    redis_patience_s: float = 30.0
    coalesce_s: float = 0.1
    worker_max_jobs: int = 200
    mail_worker_max_jobs: int = 20
    max_body_bytes: int = 1 << 20
    max_streams: int | None = None  # unset: as many as the open-files limit holds
    web_processes: int | None = None  # unset: `web` one per usable core, `up` one
    max_streams_per_user: int = 20
    max_tasks_in_flight_per_user: int = 20
    max_tasks_in_flight_unverified: int = 10  # an account whose address is not verified
    max_tasks_per_hour_per_user: int = 300  # started in a clock hour
    max_tasks_per_hour_unverified: int = 30
    max_running_per_user: int = 4
    fair_dispatch: bool = True  # users' jobs start in turns (`jobs/runtime/fair.py`)
    sync_wait_max_s: float = 0.0
    stream_open_pause_s: float = 0.0  # tests only: how long a stream's opening waits
    demo_max_s: float = 300.0  # a demo task's whole duration, steps × stepSeconds
    max_simulation_cells: int = 1_200_000  # paths × horizonMonths of one simulation
    queue_name: str = "taskstream:queue"
    export_dir: str = ".taskstream/exports"
    export_store: str | None = None  # s3://bucket/prefix; unset: the directory `export_dir`
    export_s3_endpoint: str | None = None  # an S3-compatible server other than AWS's
    font_path: str | None = None
    sweep_s: float = 300.0
    policy_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    extra_kinds: tuple[str, ...] = ()  # modules that each define one more task kind
    gemini: GeminiSettings = field(default_factory=GeminiSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    public_url: str = "http://127.0.0.1:8000"
    mail_catcher_dir: str | None = None
    trusted_proxies: str = ""  # addresses whose X-Forwarded-For/-Proto are believed
    metrics_token: str | None = None  # /metrics for clients elsewhere than this machine
    cors_origins: tuple[str, ...] = ()  # other origins whose pages may call the API

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        overrides: dict[str, dict[str, float]] = {}
        for name in env:
            for prefix, attribute in POLICY_VARIABLES.items():
                if name.startswith(prefix) and env[name] != "":
                    kind = overrides.setdefault(name.removeprefix(prefix).lower(), {})
                    kind[attribute] = reader.number(name, 0)
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            streams_url=env.get("TASKSTREAM_STREAMS_URL") or None,
            data_dir=env.get("TASKSTREAM_DATA_DIR", cls.data_dir),
            retention_s=int(reader.number("TASKSTREAM_RETENTION_SECONDS", cls.retention_s)),
            stream_maxlen=int(reader.number("TASKSTREAM_STREAM_MAXLEN", cls.stream_maxlen)),
            heartbeat_s=reader.number("TASKSTREAM_HEARTBEAT_SECONDS", cls.heartbeat_s),
            answer_within_s=reader.number("TASKSTREAM_ANSWER_WITHIN_SECONDS", cls.answer_within_s),
            request_read_s=reader.number("TASKSTREAM_REQUEST_READ_SECONDS", cls.request_read_s),
            max_waiting_connections_per_client=int(
                reader.number(
                    "TASKSTREAM_MAX_WAITING_CONNECTIONS_PER_CLIENT",
                    cls.max_waiting_connections_per_client,
                )
            ),
            listener_queue=int(reader.number("TASKSTREAM_LISTENER_QUEUE", cls.listener_queue)),
            lease_s=reader.number("TASKSTREAM_LEASE_SECONDS", cls.lease_s),
            redis_patience_s=reader.number(
                "TASKSTREAM_REDIS_PATIENCE_SECONDS", cls.redis_patience_s
            ),
            coalesce_s=reader.number("TASKSTREAM_COALESCE_MS", cls.coalesce_s * 1000) / 1000,
            worker_max_jobs=int(reader.number("TASKSTREAM_WORKER_MAX_JOBS", cls.worker_max_jobs)),
            mail_worker_max_jobs=int(
                reader.number("TASKSTREAM_MAIL_WORKER_MAX_JOBS", cls.mail_worker_max_jobs)
            ),
            max_body_bytes=int(reader.number("TASKSTREAM_MAX_BODY_BYTES", cls.max_body_bytes)),
            max_streams=int(reader.number("TASKSTREAM_MAX_STREAMS", 0)) or None,
            web_processes=int(reader.number("TASKSTREAM_WEB_PROCESSES", 0)) or None,
            max_streams_per_user=int(
                reader.number("TASKSTREAM_MAX_STREAMS_PER_USER", cls.max_streams_per_user)
            ),
            max_tasks_in_flight_per_user=int(
                reader.number(
                    "TASKSTREAM_MAX_TASKS_IN_FLIGHT_PER_USER", cls.max_tasks_in_flight_per_user
                )
            ),
            max_tasks_in_flight_unverified=int(
                reader.number(
                    "TASKSTREAM_MAX_TASKS_IN_FLIGHT_UNVERIFIED", cls.max_tasks_in_flight_unverified
                )
            ),
            max_tasks_per_hour_per_user=int(
                reader.number(
                    "TASKSTREAM_MAX_TASKS_PER_HOUR_PER_USER", cls.max_tasks_per_hour_per_user
                )
            ),
            max_tasks_per_hour_unverified=int(
                reader.number(
                    "TASKSTREAM_MAX_TASKS_PER_HOUR_UNVERIFIED", cls.max_tasks_per_hour_unverified
                )
            ),
            max_running_per_user=int(
                reader.number("TASKSTREAM_MAX_RUNNING_PER_USER", cls.max_running_per_user)
            ),
            fair_dispatch=reader.choice("TASKSTREAM_FAIR_DISPATCH", ("on", "off"), "on") == "on",
            sync_wait_max_s=reader.number("TASKSTREAM_SYNC_WAIT_MAX_SECONDS", cls.sync_wait_max_s),
            stream_open_pause_s=reader.number(
                "TASKSTREAM_TEST_STREAM_OPEN_PAUSE_SECONDS", cls.stream_open_pause_s
            ),
            demo_max_s=reader.number("TASKSTREAM_DEMO_MAX_SECONDS", cls.demo_max_s),
            max_simulation_cells=int(
                reader.number("TASKSTREAM_MAX_SIMULATION_CELLS", cls.max_simulation_cells)
            ),
            queue_name=env.get("TASKSTREAM_QUEUE", cls.queue_name),
            export_dir=env.get("TASKSTREAM_EXPORT_DIR")
            or os.path.join(env.get("TASKSTREAM_DATA_DIR", cls.data_dir), "exports"),
            export_store=env.get("TASKSTREAM_EXPORT_STORE") or None,
            export_s3_endpoint=env.get("TASKSTREAM_EXPORT_S3_ENDPOINT") or None,
            font_path=env.get("TASKSTREAM_FONT") or None,
            sweep_s=reader.number("TASKSTREAM_SWEEP_SECONDS", cls.sweep_s),
            policy_overrides=overrides,
            extra_kinds=tuple(
                m.strip() for m in env.get("TASKSTREAM_EXTRA_KINDS", "").split(",") if m.strip()
            ),
            smtp=SmtpSettings(
                host=env.get("SMTP_HOST") or SmtpSettings.host,
                port=int(reader.number("SMTP_PORT", SmtpSettings.port)),
                username=env.get("SMTP_USERNAME") or None,
                password=env.get("SMTP_PASSWORD") or None,
                tls=reader.choice("SMTP_TLS", ("none", "starttls", "tls"), SmtpSettings.tls),
                sender=env.get("MAIL_FROM") or SmtpSettings.sender,
                timeout_s=reader.number("SMTP_TIMEOUT_SECONDS", SmtpSettings.timeout_s),
            ),
            auth=AuthSettings(
                secret_key=_secret_key(env),
                access_ttl_s=reader.number(
                    "TASKSTREAM_ACCESS_TOKEN_SECONDS", AuthSettings.access_ttl_s
                ),
                refresh_ttl_s=reader.number(
                    "TASKSTREAM_REFRESH_TOKEN_SECONDS", AuthSettings.refresh_ttl_s
                ),
                ticket_ttl_s=reader.number(
                    "TASKSTREAM_STREAM_TICKET_SECONDS", AuthSettings.ticket_ttl_s
                ),
                window_s=reader.number("TASKSTREAM_RATE_WINDOW_SECONDS", AuthSettings.window_s),
                limits={
                    action: (
                        int(reader.number(f"TASKSTREAM_RATE_{action.upper()}_PER_CLIENT", ip)),
                        int(reader.number(f"TASKSTREAM_RATE_{action.upper()}_PER_EMAIL", mail)),
                    )
                    for action, (ip, mail) in _DEFAULT_LIMITS.items()
                },
            ),
            public_url=(env.get("TASKSTREAM_PUBLIC_URL") or cls.public_url).rstrip("/"),
            mail_catcher_dir=env.get("TASKSTREAM_MAIL_CATCHER_DIR") or None,
            trusted_proxies=env.get("TASKSTREAM_TRUSTED_PROXIES", "").strip(),
            metrics_token=env.get("TASKSTREAM_METRICS_TOKEN") or None,
            cors_origins=reader.origins("TASKSTREAM_CORS_ORIGINS"),
            gemini=GeminiSettings(
                api_key=env.get("GEMINI_API_KEY") or None,
                model=env.get("GEMINI_MODEL") or GeminiSettings.model,
                base_url=env.get("GEMINI_BASE_URL") or None,
                timeout_s=reader.number("GEMINI_TIMEOUT_SECONDS", GeminiSettings.timeout_s),
                max_output_tokens=int(
                    reader.number("GEMINI_MAX_OUTPUT_TOKENS", GeminiSettings.max_output_tokens)
                ),
            ),
        )

    def require_secret(self) -> str:
        """The key that signs access tokens: every web process must share it."""
        if not self.auth.secret_key:
            raise ConfigError(
                "TASKSTREAM_SECRET_KEY is not set: give every web process the same random "
                f"value of {MIN_KEY_BITS} bits or more, made with {MAKE_A_KEY} "
                "(`taskstream up` makes one for you)"
            )
        return self.auth.secret_key

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError(
                "REDIS_URL is not set: point it at a Redis or Valkey server "
                "(e.g. redis://127.0.0.1:6379/0), or run `taskstream up`, which starts one"
            )
        if ClusterTarget.parse(self.redis_url) is not None:
            raise ConfigError(
                "REDIS_URL names a cluster, but ARQ's queue and the accounts need one server "
                "(or a Sentinel-watched primary): give the cluster as TASKSTREAM_STREAMS_URL, "
                "where the task records and their streams live"
            )
        return self.redis_url

    def require_streams_url(self) -> str:
        """Where the task records, their streams and live delivery are: a cluster, or by
        default the server of `REDIS_URL`."""
        return self.streams_url or self.require_redis_url()

    def task_limits(self, verified: bool) -> tuple[int, int]:
        """A user's tasks in flight, and started per hour: fewer until their address is
        verified (a throwaway account's share)."""
        if verified:
            return self.max_tasks_in_flight_per_user, self.max_tasks_per_hour_per_user
        return self.max_tasks_in_flight_unverified, self.max_tasks_per_hour_unverified


MIN_KEY_BITS = 256
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def key_bits(key: str) -> float:
    """An estimate of a key's entropy: what zxcvbn finds made of patterns (dictionary
    words, repeats, sequences, dates, keyboard runs) counts as its guesses; the rest, as
    random characters drawn from the classes each such run uses (lower, upper, digits,
    other).
    So `Password1!` four times counts once and barely, a word plus digits as the word's
    guesses plus the digits'. (zxcvbn alone counts every random character as ten
    guesses: a real random key would fall short.) The first `KEY_CHARS_READ` characters
    are read: a longer key has at least their bits."""
    from zxcvbn import zxcvbn  # only when a key is set: a few hundred KiB of word lists

    read = key[:KEY_CHARS_READ]
    bits = 0.0
    for match in zxcvbn(read, max_length=KEY_CHARS_READ)["sequence"]:
        if match["pattern"] == "bruteforce":
            token = match["token"]
            bits += len(token) * math.log2(sum(CLASS_SIZES[c] for c in {_class(c) for c in token}))
        else:
            bits += math.log2(max(float(match["guesses"]), 1.0))
    return bits


KEY_CHARS_READ = 128
CLASS_SIZES = {"lower": 26, "upper": 26, "digit": 10, "other": 32}


def _class(char: str) -> str:
    if char.islower():
        return "lower"
    if char.isupper():
        return "upper"
    return "digit" if char.isdigit() else "other"


def _secret_key(env: Mapping[str, str]) -> str:
    key = env.get("TASKSTREAM_SECRET_KEY", "")
    if key and (bits := key_bits(key)) < MIN_KEY_BITS:
        raise ConfigError(
            f"TASKSTREAM_SECRET_KEY is too weak to sign tokens (about {bits:.0f} bits; "
            f"{MIN_KEY_BITS} needed): make one with {MAKE_A_KEY}"
        )
    return key


@dataclass
class _Reader:
    env: Mapping[str, str]

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.env.get(name) or default
        if raw not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return raw

    def origins(self, name: str) -> tuple[str, ...]:
        """Exact origins, comma-separated: `scheme://host[:port]`, nothing else."""
        found = []
        for raw in (o.strip() for o in self.env.get(name, "").split(",")):
            if not raw:
                continue
            origin = raw.rstrip("/").lower()
            if not ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"{name} names exact origins (https://app.example.com, "
                    f"http://localhost:5173), comma-separated; not {raw!r}"
                )
            found.append(origin)
        return tuple(found)

    def number(self, name: str, default: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < 0:
            raise ConfigError(f"{name} must not be negative, got {raw!r}")
        return value
