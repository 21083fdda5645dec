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
