"""The Range header as RFC 9110 section 14 reads it, on its own examples (a 10,000-byte
representation), and what is refused."""

from __future__ import annotations

import pytest

from server.ranges import MAX_RANGES, BadRange, Unsatisfiable, byte_ranges

SIZE = 10_000


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        ("bytes=0-499", [(0, 500)]),  # the first 500 bytes
        ("bytes=500-999", [(500, 1000)]),  # the second 500 bytes
        ("bytes=-500", [(9500, 10000)]),  # the final 500 bytes
        ("bytes=9500-", [(9500, 10000)]),  # the final 500 bytes, another way
        ("bytes=0-0,-1", [(0, 1), (9999, 10000)]),  # the first and last bytes only
        ("bytes=500-600,601-999", [(500, 1000)]),  # the second 500, not canonical
        ("bytes=500-700,601-999", [(500, 1000)]),  # the same, overlapping
        ("bytes=0-999, 4500-5499, -1000", [(0, 1000), (4500, 5500), (9000, 10000)]),
        ("Bytes=0-0", [(0, 1)]),  # the unit is case-insensitive
        ("bytes=9000-20000", [(9000, 10000)]),  # a last past the end is the end
        ("bytes=-20000", [(0, 10000)]),  # a suffix longer than the file is the file
        ("bytes=20000-,0-9", [(0, 10)]),  # a range past the end is dropped, not the rest
    ],
)
def test_the_rfcs_examples_and_their_neighbours(header: str, ranges: list[tuple[int, int]]):
    assert byte_ranges(header, SIZE) == ranges


@pytest.mark.parametrize(
    "header",
    ["lines=1-2", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5-4", "bytes=1-2;3-4",
     "bytes=0-1,,2-3", "bytes=+1-2", "bytes=١-٢", "bytes=" + ",".join(["0-1"] * (MAX_RANGES + 1))],
)  # fmt: skip
def test_a_header_that_is_not_a_bytes_range_is_refused_whole(header: str):
    with pytest.raises(BadRange):
        byte_ranges(header, SIZE)


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10000-", SIZE), ("bytes=-0", SIZE), ("bytes=0-", 0)]
)
def test_no_range_within_the_file_is_unsatisfiable(header: str, size: int):
    with pytest.raises(Unsatisfiable):
        byte_ranges(header, size)
