"""A project's documents as parts, and the Markdown writer (DOCX and PDF: `office.py`).

A part is a heading and blocks (paragraphs, bullets, tables) built from the stored plan,
its evaluation and the financial simulation; a writer takes parts one at a time (the
export job reports progress between them) and saves the file once at the end.

PDF text is drawn in a TrueType font that covers Hangul: `find_font` finds it
(`TASKSTREAM_FONT`, by default Debian's NanumGothic, which `scripts/install` installs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = tuple[str, str] | Table  # ("p" | "li" | "h3", text), or a table


@dataclass(frozen=True)
class Part:
    key: str
    title: str
    blocks: tuple[Block, ...] = field(default=())


def blocks_from_markdown(text: str) -> tuple[Block, ...]:
    """The plan's Markdown as paragraphs, bullets and sub-headings (inline marks dropped)."""
    blocks: list[Block] = []
    paragraph: list[str] = []

    def close() -> None:
        if paragraph:
            blocks.append(("p", " ".join(paragraph)))
            paragraph.clear()

    for raw in text.splitlines():
        line = raw.strip().replace("**", "").replace("__", "")
        if not line:
            close()
        elif line.startswith(("- ", "* ", "• ")):
            close()
            blocks.append(("li", line[2:].strip()))
        elif line.startswith("#"):
            close()
            blocks.append(("h3", line.lstrip("#").strip()))
        else:
            paragraph.append(line)
    close()
    return tuple(blocks)


def find_font(configured: str | None) -> Path | None:
    """The TrueType font for PDFs: the configured one, else the first installed candidate."""
    for candidate in (configured,) if configured else FONT_CANDIDATES:
        if os.path.isfile(candidate):
            return Path(candidate)
    return None


class Writer(Protocol):
    def add(self, part: Part) -> None: ...

    def save(self, path: Path) -> None: ...


class MarkdownWriter:
    def __init__(self, title: str, language: str) -> None:
        self.lines = [f"# {title}", ""]

    def add(self, part: Part) -> None:
        self.lines += [f"## {part.title}", ""]
        for block in part.blocks:
            if isinstance(block, Table):
                self.lines.append("| " + " | ".join(block.header) + " |")
                self.lines.append("|" + " --- |" * len(block.header))
                for row in block.rows:
                    cells = (c.replace("|", "\\|").replace("\n", " ") for c in row)
                    self.lines.append("| " + " | ".join(cells) + " |")
                self.lines.append("")
            else:
                kind, text = block
                prefix = {"li": "- ", "h3": "### "}.get(kind, "")
                self.lines += [prefix + text] if kind == "li" else [prefix + text, ""]
        if self.lines[-1] != "":
            self.lines.append("")

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.lines), encoding="utf-8")


def money(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f}"
