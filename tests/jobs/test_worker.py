"""The worker process: account mail has slots of its own, so it never waits behind other
users' work."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support import WAIT, Proc, signup, start_demo, wait_for_status


async def test_a_verification_mail_goes_out_while_another_user_fills_every_worker_slot(
    private: Callable[..., Proc],
):
    busy = {"TASKSTREAM_WORKER_MAX_JOBS": "2", "TASKSTREAM_TIMEOUT_DEMO": "120"}
    web = private("web", **busy)
    private("worker", **busy)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        hog = await signup(http)
        http.headers.update(hog.headers)
        await wait_for_status(http, hog.signup_task, {"completed"})
        hogging = [await start_demo(http, steps=600, stepSeconds=0.1) for _ in range(2)]
        for task_id in hogging:
            await wait_for_status(http, task_id, {"processing"})
        newcomer = await signup(http)  # both slots are taken, for a minute
        http.headers.update(newcomer.headers)
        mail = await wait_for_status(http, newcomer.signup_task, {"completed", "failed"})
        assert mail["status"] == "completed"
        http.headers.update(hog.headers)
        for task_id in hogging:  # still running: the mail did not wait for them
            status = (await http.get(f"/api/v1/tasks/{task_id}/status")).json()["data"]
            assert status["status"] == "processing"
            await http.post(f"/api/v1/tasks/{task_id}/cancel")


async def test_a_user_at_their_running_quota_waits_without_holding_a_slot(
    private: Callable[..., Proc],
):
    quota = {"TASKSTREAM_WORKER_MAX_JOBS": "3", "TASKSTREAM_MAX_RUNNING_PER_USER": "2",
             "TASKSTREAM_TIMEOUT_DEMO": "120"}  # fmt: skip
    web = private("web", **quota)
    private("worker", **quota)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        hog = await signup(http)
        http.headers.update(hog.headers)
        hogging = [await start_demo(http, steps=600, stepSeconds=0.1) for _ in range(4)]
        for task_id in hogging[:2]:
            await wait_for_status(http, task_id, {"processing"})
        other = await signup(http)
        http.headers.update(other.headers)
        theirs = await start_demo(http, steps=600, stepSeconds=0.1)
        await wait_for_status(http, theirs, {"processing"})  # the third slot was free for it
        http.headers.update(hog.headers)
        statuses = [(await http.get(f"/api/v1/tasks/{t}/status")).json()["data"] for t in hogging]
        assert [s["status"] for s in statuses].count("processing") == 2  # the quota
        assert all(s["status"] in {"processing", "pending"} for s in statuses)
        for task_id in hogging:
            await http.post(f"/api/v1/tasks/{task_id}/cancel")
        async with httpx.AsyncClient(base_url=web.url, headers=other.headers) as theirs_http:
            await theirs_http.post(f"/api/v1/tasks/{theirs}/cancel")


async def test_waiting_for_the_quota_is_not_an_attempt(private: Callable[..., Proc]):
    quota = {"TASKSTREAM_MAX_RUNNING_PER_USER": "1"}
    web = private("web", **quota)
    private("worker", **quota)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        first = await start_demo(http, steps=20, stepSeconds=0.1)
        await wait_for_status(http, first, {"processing"})
        second = await start_demo(http, steps=2, stepSeconds=0.01)  # waits its turn, in tries
        done = await wait_for_status(http, second, {"completed", "failed"})
        assert (done["status"], done["attempt"]) == ("completed", 1)
        ran_first = await wait_for_status(http, first, {"completed"})
        assert ran_first["finishedAt"] <= done["startedAt"]  # one at a time: the quota of 1


async def test_arqs_own_command_runs_the_queues_one_per_process(private: Callable[..., Proc]):
    web = private("web")
    private("arq:jobs.worker.WorkerSettings")
    private("arq:jobs.worker.MailWorkerSettings")
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        mail = await wait_for_status(http, user.signup_task, {"completed", "failed"})
        assert mail["status"] == "completed"
        demo = await wait_for_status(http, await start_demo(http, steps=3), {"completed", "failed"})
        assert demo["status"] == "completed"


async def test_a_user_with_one_task_starts_before_a_user_with_ten(private: Callable[..., Proc]):
    """Fair dispatch: the busy user's tasks arrived first, all queued; the other's one
    starts at the next free slot, ahead of the busy user's third."""
    pace = {"TASKSTREAM_WORKER_MAX_JOBS": "2"}
    web = private("web", **pace)
    private("worker", **pace)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        busy, one = await signup(http), await signup(http)
        http.headers.update(busy.headers)
        queued = [await start_demo(http, steps=2, stepSeconds=0.25) for _ in range(10)]
        http.headers.update(one.headers)
        theirs = await start_demo(http, steps=2, stepSeconds=0.25)
        started = (await wait_for_status(http, theirs, {"completed"}))["startedAt"]
        http.headers.update(busy.headers)
        busy_starts = [(await wait_for_status(http, t, {"completed"}))["startedAt"] for t in queued]
    # two slots may free at once: then it starts beside the third, never after it
    assert started <= min(busy_starts[2:]), (started, busy_starts)


async def test_a_kind_bounded_per_worker_runs_that_many_at_once(private: Callable[..., Proc]):
    bound = {"TASKSTREAM_PER_WORKER_DEMO": "1"}
    web = private("web", **bound)
    private("worker", **bound)
    async with httpx.AsyncClient(base_url=web.url, timeout=WAIT) as http:
        user = await signup(http)
        http.headers.update(user.headers)
        started = [await start_demo(http, steps=3, stepSeconds=0.1) for _ in range(3)]
        done = [await wait_for_status(http, t, {"completed", "failed"}) for t in started]
    assert [(d["status"], d["attempt"]) for d in done] == [("completed", 1)] * 3
    spans = sorted((d["startedAt"], d["finishedAt"]) for d in done)
    assert all(after[0] >= before[1] for before, after in zip(spans, spans[1:], strict=False)), (
        spans
    )
