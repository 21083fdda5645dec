"""A project's documents as parts, and the writers that render them: Markdown, DOCX, PDF.

A part is a heading and blocks (paragraphs, bullets, tables) built from the stored plan,
its evaluation and the financial simulation; a writer takes parts one at a time (the
export job reports progress between them) and saves the file once at the end.

PDF text is drawn in a TrueType font that covers Hangul (`TASKSTREAM_FONT`, by default
Debian's NanumGothic, which `scripts/install` installs) and embedded, subset, with its
ToUnicode map, so the Korean text can be selected and extracted back. DOCX names Malgun
Gothic (on every Windows and Office install) for East Asian text and marks it ko-KR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docx import Document as new_docx
from docx.oxml.ns import qn
from fpdf import FPDF
from fpdf.enums import XPos, YPos

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
)
DOCX_EAST_ASIAN_FONT = "Malgun Gothic"


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


class DocxWriter:
    def __init__(self, title: str, language: str) -> None:
        self.doc = new_docx()
        self.doc.core_properties.title = title
        self.doc.core_properties.language = "ko-KR" if language == "ko" else "en-US"
        for style in ("Normal", "Title", "Heading 1", "Heading 2", "Heading 3", "List Bullet"):
            fonts = self.doc.styles[style].element.get_or_add_rPr().get_or_add_rFonts()
            fonts.set(qn("w:eastAsia"), DOCX_EAST_ASIAN_FONT)
        rpr = self.doc.styles["Normal"].element.get_or_add_rPr()
        lang = rpr.makeelement(qn("w:lang"), {qn("w:eastAsia"): "ko-KR"})
        rpr.append(lang)
        self.doc.add_heading(title, level=0)

    def add(self, part: Part) -> None:
        self.doc.add_heading(part.title, level=1)
        for block in part.blocks:
            if isinstance(block, Table):
                table = self.doc.add_table(rows=1, cols=len(block.header))
                table.style = "Table Grid"
                for cell, text in zip(table.rows[0].cells, block.header, strict=True):
                    cell.text = text
                for row in block.rows:
                    for cell, text in zip(table.add_row().cells, row, strict=True):
                        cell.text = text
            else:
                kind, text = block
                if kind == "h3":
                    self.doc.add_heading(text, level=2)
                else:
                    self.doc.add_paragraph(text, style="List Bullet" if kind == "li" else None)

    def save(self, path: Path) -> None:
        self.doc.save(str(path))


class PdfWriter:
    def __init__(self, title: str, language: str, font: Path) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_title(title)
        self.pdf.set_lang("ko-KR" if language == "ko" else "en-US")
        self.pdf.set_auto_page_break(auto=True, margin=18)
        bold = font.with_name(font.stem + "Bold" + font.suffix)
        self.pdf.add_font("body", "", str(font))
        self.pdf.add_font("body", "B", str(bold if bold.is_file() else font))
        self.pdf.add_page()
        self._text(title, size=20, bold=True, after=6)

    def add(self, part: Part) -> None:
        self.pdf.ln(4)
        self._text(part.title, size=15, bold=True, after=2)
        for block in part.blocks:
            if isinstance(block, Table):
                self.pdf.set_font("body", size=9)
                with self.pdf.table(first_row_as_headings=True, line_height=5) as table:
                    for cells in (block.header, *block.rows):
                        row = table.row()
                        for text in cells:
                            row.cell(text)
                self.pdf.ln(2)
            else:
                kind, text = block
                if kind == "h3":
                    self._text(text, size=12, bold=True, after=1)
                else:
                    self._text(("• " if kind == "li" else "") + text, size=11, after=2)

    def _text(self, text: str, *, size: float, bold: bool = False, after: float = 0) -> None:
        self.pdf.set_font("body", "B" if bold else "", size)
        self.pdf.multi_cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(after)

    def save(self, path: Path) -> None:
        self.pdf.output(str(path))


def writer_for(fmt: str, title: str, language: str, font: Path | None) -> Writer:
    if fmt == "md":
        return MarkdownWriter(title, language)
    if fmt == "docx":
        return DocxWriter(title, language)
    assert font is not None, "PDF needs a font"
    return PdfWriter(title, language, font)


def money(value: Any) -> str:
    return "—" if value is None else f"{value:,.0f}"
