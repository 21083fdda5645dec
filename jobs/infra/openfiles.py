"""A process's open-files limit, raised to what it may have."""

from __future__ import annotations

import resource


def raise_open_files() -> int:
    """Raise this process's soft open-files limit to its hard limit (where the system lets
    it): the limit it has now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # as it is
    return soft
