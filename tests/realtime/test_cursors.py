"""The cursor code of the delivery contract, on its own (no server): where a stream is,
what it admits, and what a client's ids say."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobs.record.values import Event, Task
from server.realtime.follow import AllCursor, Cursor, has_seen_end, parse_cursor

A, B = str(uuid.uuid4()), str(uuid.uuid4())


def event(event_id: str) -> Event:
    return Event(event_id, "progress", "{}")


def task(status: str, last_event_id: str) -> Task:
    snapshot: Any = {"taskId": A, "status": status}
    return Task(snapshot, "owner", last_event_id)


def test_a_cursor_admits_only_what_is_newer_than_what_it_has_seen():
    cursor = Cursor("100-1")
    assert [cursor.admit(event(i)) for i in ("100-0", "100-1", "100-2", "99-9", "101-0")] == [
        False, False, True, False, True,
    ]  # fmt: skip
    assert cursor.id == "101-0"


@pytest.mark.parametrize("start", [None, "", "not-an-id", "12", "1-2-3", "-1"])
def test_a_cursor_from_no_id_or_a_malformed_one_admits_from_the_start(start: str | None):
    cursor = Cursor(start)
    assert cursor.id is None
    assert cursor.admit(event("1-0"))


def test_a_cursor_never_admits_an_event_whose_id_is_not_an_id():
    cursor = Cursor(None)
    assert not cursor.admit(event("garbage"))
    assert cursor.id is None


def test_a_cursor_reset_to_an_older_id_admits_from_there_again():
    cursor = Cursor("5-0")
    cursor.reset("3-0")
    assert cursor.admit(event("4-0")) and cursor.id == "4-0"


def test_zero_means_from_the_tasks_creation():
    cursor = Cursor("0")
    assert cursor.id == "0" and cursor.admit(event("0-1"))


@pytest.mark.parametrize(
    ("value", "count", "parsed"),
    [
        ("1-0,2-0", 2, ["1-0", "2-0"]),
        ("1-0,", 2, ["1-0", None]),  # the second task: from its start
        ("1-0,x", 2, ["1-0", None]),  # a malformed part counts as none
        ("1-0", 2, [None, None]),  # not one per task: the whole cursor is none
        ("1-0,2-0,3-0", 2, [None, None]),
        (None, 3, [None, None, None]),
    ],
)
def test_a_multi_task_cursor_is_one_id_per_task_or_none(
    value: str | None, count: int, parsed: list[str | None]
):
    assert parse_cursor(value, count) == parsed


@pytest.mark.parametrize(
    ("status", "last_seen", "seen"),
    [
        ("completed", "7-0", True),  # its terminal event, exactly
        ("failed", "8-0", True),  # past it
        ("cancelled", "6-9", False),  # before it
        ("processing", "7-0", False),  # not ended: there is more to come
        ("completed", None, False),
        ("completed", "nonsense", False),
    ],
)
def test_a_client_has_seen_the_end_only_of_an_ended_task_up_to_its_last_event(
    status: str, last_seen: str | None, seen: bool
):
    assert has_seen_end(task(status, "7-0"), last_seen) is seen


def test_an_all_tasks_cursor_reads_back_what_it_writes():
    cursor = AllCursor(1700000000000, {A: "1700000000001-0", B: ""})
    assert str(cursor) == f"1700000000000|{A}=1700000000001-0,{B}="
    assert AllCursor.parse(str(cursor)) == cursor
    assert AllCursor.parse("5|") == AllCursor.parse("5") == AllCursor(5, {})  # none followed yet


@pytest.mark.parametrize(
    "value",
    [None, "", "x|", "-5|", "5|not-a-task=1-0", f"5|{A}=nonsense", "9" * 21 + "|"],
    ids=["none", "empty", "since-not-digits", "negative", "task-id", "event-id", "21-digits"],
)  # fmt: skip
def test_an_all_tasks_cursor_that_is_not_one_is_none(value: str | None):
    assert AllCursor.parse(value) is None
