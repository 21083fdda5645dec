"""The task kinds, one module each: a new kind is a module that defines `KIND` (see
`jobs/kind.py`) and one line in `BUILT_IN`.

`load` adds the kinds of the modules named in `TASKSTREAM_EXTRA_KINDS`, the same way: the
test suite registers a kind of its own so. The web process and the worker each load the
list once at start-up; routes, the OpenAPI document and the worker's functions are made
from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from jobs.infra.config import ConfigError
from jobs.kind import Kind
from jobs.kinds import business_plan, demo, email, evaluation, export, financial

Kinds = dict[str, Kind[Any]]

BUILT_IN: tuple[Kind[Any], ...] = (
    demo.KIND,
    business_plan.KIND,
    evaluation.KIND,
    export.KIND,
    financial.KIND,
    email.KIND,
)


def load(extra_modules: Iterable[str] = ()) -> Kinds:
    """The built-in kinds and those of `extra_modules`, by name."""
    kinds: Kinds = {}
    for kind in (*BUILT_IN, *(_kind_of(name) for name in extra_modules)):
        if kind.name in kinds:
            raise ConfigError(f"two task kinds are named {kind.name!r}")
        kinds[kind.name] = kind
    return kinds


def _kind_of(module_name: str) -> Kind[Any]:
    try:
        kind = importlib.import_module(module_name).KIND
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"TASKSTREAM_EXTRA_KINDS: {module_name!r} is not a module with a KIND ({error})"
        ) from None
    if not isinstance(kind, Kind):
        raise ConfigError(f"TASKSTREAM_EXTRA_KINDS: {module_name}.KIND is not a Kind")
    return kind
