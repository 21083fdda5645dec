"""The work, and the record of it: the ARQ worker (`worker.py`), the task kinds
(`kind.py`, `start.py`, `kinds/`), the runtime around a job (`runtime/`), the task record
(`record/`), the stores of accounts and plans, the language model (`language/`), the
documents (`documents/`), the simulation (`simulation/`) and what every process shares
(`infra/`). Never imports `server`.

A map of the rooms and the path of an event: `docs/architecture.md`.
"""
