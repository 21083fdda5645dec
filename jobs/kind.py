"""What a task kind is: its name, the typed input of its job, its policy and its job.

Each kind is one module of `jobs/kinds/` that defines a `KIND`; `jobs/kinds/__init__.py`
lists them. The web process starts a task through the kind's `start` (`jobs/start.py`: its
route, its body, the hook that builds the `Params`) and queues it; the worker validates
the queued params into the same model and runs the job with it. The routes and the
OpenAPI document are made from the list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from jobs.accounts import UserStore
    from jobs.infra.config import Settings
    from jobs.plans import PlanStore
    from jobs.record.tasks import TaskStore
    from jobs.runtime.progress import Progress
    from jobs.start import Start

TASKS_PATH = "/api/v1/tasks"  # where every task is followed, whatever its kind

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class KindPolicy:
    """How long one attempt of a task kind may run, and how often it is tried.
    `TASKSTREAM_TIMEOUT_<KIND>`, `_MAX_TRIES_<KIND>` and `_RETRY_BACKOFF_<KIND>` override it."""

    timeout_s: float
    max_tries: int
    retry_backoff_s: float
    # how many may run at once in one worker (a heavy kind's memory); None: no bound
    per_worker: int | None = None


@dataclass(frozen=True)
class JobContext:
    """What a job function gets: its task, its attempt, and the reporter to write through."""

    task_id: str
    kind: str
    attempt: int
    progress: Progress
    store: TaskStore
    plans: PlanStore
    users: UserStore
    settings: Settings
    worker: dict[str, Any]  # ARQ's ctx: the clients the worker opened (`model`, …)


@dataclass(frozen=True)
class Kind(Generic[P]):
    """One kind of task."""

    name: str
    params: type[P]  # the job's input: validated by the web process, again by the worker
    policy: KindPolicy
    run: Callable[[JobContext, P], Awaitable[Any]]  # the job: its return value is the result
    path: str = TASKS_PATH  # where its tasks' status, result and cancel are served
    # "main", or "mail": account mail's queue, with worker slots of its own (however busy
    # the workers are with users' work, a verification or reset mail goes out at once)
    queue: Literal["main", "mail"] = "main"
    ownerless: bool = False  # a task may have no owner: then it is its id's holder's
    # counted among its owner's running jobs (their quota) and started in their turn
    # (fair dispatch, `jobs/runtime/fair.py`)
    counted: bool = True
    start: Start[Any] | None = None  # how it is started over HTTP, if it is

    def policy_in(self, settings: Settings) -> KindPolicy:
        """Its policy, as `settings` override it."""
        given, stated = settings.policy_overrides.get(self.name, {}), self.policy
        return replace(
            stated,
            timeout_s=given.get("timeout_s", stated.timeout_s),
            max_tries=int(given.get("max_tries", stated.max_tries)),
            retry_backoff_s=given.get("retry_backoff_s", stated.retry_backoff_s),
            per_worker=int(given["per_worker"]) if "per_worker" in given else stated.per_worker,
        )

    def queue_in(self, settings: Settings) -> str:
        """The ARQ queue its jobs wait in: account mail has its own (and worker slots of
        its own), so that a verification or reset mail goes out however busy users' work is."""
        main = settings.queue_name
        return main if self.queue == "main" else f"{main}:{self.queue}"

    def result_url(self, task_id: str) -> str:
        return f"{self.path}/{task_id}/result"
