"""The import graph of `jobs/` and `server/`, read from the source: `jobs/` never imports
`server/`, no module imports itself back through others, and imports run down the layers
below (the one exception is named here, with its reason). Imports under `TYPE_CHECKING`
are types only and are not counted."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# lowest first; a module belongs to the first layer that names it or a package above it
LAYERS = {
    "jobs": [
        ("jobs.infra", "jobs.errors"),
        ("jobs.record", "jobs.accounts", "jobs.plans", "jobs.language", "jobs.documents",
         "jobs.simulation"),
        ("jobs.kind", "jobs.start"),
        ("jobs.kinds", "jobs.runtime"),
        ("jobs.worker",),
    ],
    "server": [
        ("server.errors", "server.responses", "server.headers", "server.cors", "server.ranges",
         "server.client_address", "server.static_files", "server.deadline", "server.guard",
         "server.state"),
        ("server.auth", "server.ratelimit", "server.access", "server.submit"),
        ("server.realtime",),
        ("server.api",),
        ("server.app", "server.lifespan", "server.serve"),
    ],
}  # fmt: skip
# a login's watch is made where the login is checked (`auth.watch_login`), and is what
# the streams hold: auth reaches up to the realtime `Sessions` that keep the watches
UPWARDS = {("server.auth", "server.realtime.sessions")}


def modules() -> dict[str, Path]:
    found = {}
    for top in LAYERS:
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return {name: path for name, path in found.items() if name not in LAYERS}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules `path` imports when it runs (not for type checking only)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                found.add(whole if whole in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in known}


def layer(module: str) -> tuple[str, int]:
    top = module.partition(".")[0]
    for index, members in enumerate(LAYERS[top]):
        if any(module == m or module.startswith(m + ".") for m in members):
            return top, index
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: place it")


GRAPH = {name: imports(path, modules()) - {name} for name, path in modules().items()}


def test_jobs_never_imports_server():
    assert not [(a, b) for a, bs in GRAPH.items() for b in bs
                if a.startswith("jobs") and b.startswith("server")]  # fmt: skip


def circle_through(start: str) -> list[str] | None:
    """A chain of imports from `start` back to it, if there is one."""
    seen: set[str] = set()
    stack = [(start, [start])]
    while stack:
        here, trail = stack.pop()
        for following in GRAPH[here]:
            if following == start:
                return [*trail, start]
            if following not in seen:
                seen.add(following)
                stack.append((following, [*trail, following]))
    return None


def test_no_module_imports_itself_back():
    assert [circle for name in GRAPH if (circle := circle_through(name))] == []


def test_imports_run_down_the_layers():
    upwards = {(a, b) for a, bs in GRAPH.items() for b in bs if layer(b) > layer(a)}
    assert upwards == UPWARDS


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer(name)
