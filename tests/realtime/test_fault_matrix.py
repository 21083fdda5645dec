"""The fault matrix (`bench/faults.py`), its fast cases repeated: after each fault, every
task ended, every stream ended with it, no task `INTERNAL_ERROR`, and every client's events
are the task's log after its first id. `python -m bench.faults` runs every case, more
times."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import matrix

CASES = [  # (fault, runs): the cheap ones more often
    ("valkey-restart", 3),
    ("worker-kill", 2),
    ("web-kill", 2),
    ("web-child-kill", 1),
    ("valkey-pause", 1),
    ("valkey-outage", 1),
    ("failover", 1),
]


@pytest.mark.timeout(300)  # a deployment of its own, and the fault run `runs` times
@pytest.mark.parametrize(("fault", "runs"), CASES, ids=[name for name, _ in CASES])
async def test_after_each_fault_every_task_and_stream_ends_with_nothing_lost(
    fault: str, runs: int, tmp_path: Path
):
    found = await matrix([fault], runs, 6, tmp_path)
    tally = found[fault]
    assert (tally.runs, tally.tasks) == (runs, runs * 6)
    assert tally.clean, tally
