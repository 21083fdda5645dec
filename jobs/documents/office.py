"""The office formats' writers, DOCX and PDF, on python-docx and fpdf2 (worker only).

PDF text is drawn in a TrueType font that covers Hangul and embedded, subset, with its
ToUnicode map, so the Korean text can be selected and extracted back. DOCX names Malgun
Gothic (on every Windows and Office install) for East Asian text and marks it ko-KR.
"""

from __future__ import annotations

from pathlib import Path

from docx import Document as new_docx
from docx.oxml.ns import qn
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from jobs.documents.parts import MarkdownWriter, Part, Table, Writer

DOCX_EAST_ASIAN_FONT = "Malgun Gothic"


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
