"""Delivery: the web process. HTTP resources (`api/`), streams (`realtime/`), and the
wiring (`app.py`, `state.py`). It reads and starts tasks through `jobs`; it runs no job.
"""
