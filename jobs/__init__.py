"""The work, and the record of it: the task record (`tasks.py`, `write.lua`, `keys.py`),
the task kinds (`kind.py`, `kinds/`), the worker runtime (`worker.py`, `lifecycle.py`,
`progress.py`, `reaper.py`, `quota.py`, `control.py`) and what both processes share
(`config.py`, `connections.py`, `logs.py`, `metrics.py`, …). Never imports `server`.

A map of the rooms and the path of an event: `docs/architecture.md`.
"""
