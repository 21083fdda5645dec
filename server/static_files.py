"""Where the page and the client library are: `static/` at the top of a checkout, which a
built wheel ships as `server/static/` (`pyproject.toml`: the build maps the folder in)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def static_dir() -> Path:
    """The installed package's copy, else the checkout's folder."""
    for folder in (HERE / "static", HERE.parent / "static"):
        if (folder / "index.html").is_file():
            return folder
    raise FileNotFoundError(f"no static/ beside {HERE} or its parent: a broken install")


STATIC = static_dir()
