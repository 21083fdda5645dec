"""The worker's runtime around a kind's job: one attempt's life (`lifecycle.py`), the
progress reporter (`progress.py`), lapsed leases (`reaper.py`), jobs running per user
(`quota.py`), users' turns (`fair.py`); and the web process's side of the queue
(`intake.py`: submit, cancel).
The ARQ worker itself is `jobs/worker.py`."""
