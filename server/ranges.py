"""The `Range` header of a download, read as RFC 9110 (section 14) says.

`byte_ranges("bytes=0-499, -500", size)` gives the ranges asked for as `[start, stop)`
pairs, sorted, with overlapping and adjacent ones merged; a range that starts past the end
is dropped, one that ends past it is cut at the end. `BadRange` when the header is not a
bytes range (another unit, a last before its first, not a number: the whole header is
refused, not part of it); `Unsatisfiable` when no range falls in the file.
"""

from __future__ import annotations

import re

MAX_RANGES = 100  # more in one header is refused: a client that wants that much wants the file
RANGE_SPEC = re.compile(r"(?P<first>[0-9]*)-(?P<last>[0-9]*)")


class BadRange(ValueError):
    """The header is not a well-formed bytes range."""


class Unsatisfiable(ValueError):
    """No range asked for overlaps the file."""


def byte_ranges(header: str, size: int) -> list[tuple[int, int]]:
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        raise BadRange("only a bytes range is served (bytes=first-last)")
    asked = [spec.strip() for spec in specs.split(",")]
    if not 0 < len(asked) <= MAX_RANGES:
        raise BadRange(f"1 to {MAX_RANGES} ranges")
    ranges = []
    for spec in asked:
        match = RANGE_SPEC.fullmatch(spec)
        if match is None or match["first"] == match["last"] == "":
            raise BadRange(f"{spec!r} is not first-last, first- or -suffix")
        first, last = match["first"], match["last"]
        if first == "":  # the last N bytes
            ranges.append((max(0, size - int(last)), size) if int(last) else (size, size))
            continue
        if last != "" and int(last) < int(first):
            raise BadRange(f"{spec!r} ends before it starts")
        ranges.append((int(first), size if last == "" else min(int(last) + 1, size)))
    inside = sorted((start, stop) for start, stop in ranges if start < stop)
    if not inside:
        raise Unsatisfiable(f"no range falls within the file's {size} bytes")
    merged = [inside[0]]
    for start, stop in inside[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
