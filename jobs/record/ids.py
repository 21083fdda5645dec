"""Reading the ids a client sends: task ids, event ids (stream ids), numbers. Whatever
comes, the answer is a value or None, never an exception."""

from __future__ import annotations

import uuid

MAX_DIGITS = 20  # a 64-bit number's; a stream id's parts are


def is_digits(value: str) -> bool:
    """Only 0–9 (`str.isdigit` also takes "²", which `int` refuses), at most `MAX_DIGITS`
    of them (`int` refuses more than 4,300, and no number we read needs more than 20)."""
    return len(value) <= MAX_DIGITS and value.isascii() and value.isdigit()


def parse_event_id(value: str | None) -> tuple[int, int] | None:
    """`"1764136800000-3"` → `(1764136800000, 3)`; `"0"` (as `"0-0"`: before every event,
    so a replay from the task's creation) → `(0, 0)`; anything else → None."""
    if value == "0":
        return 0, 0
    if not value:
        return None
    ms, sep, seq = value.partition("-")
    if not sep or not is_digits(ms) or not is_digits(seq):
        return None
    return int(ms), int(seq)


def is_task_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value, version=4)) == value
    except ValueError:
        return False
