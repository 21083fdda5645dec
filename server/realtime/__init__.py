"""Live delivery: the hub (one pub/sub connection per process), the delivery contract
(`follow.py`, transport-neutral), SSE and WebSocket over it, and the limits and sessions
that bound the streams."""
