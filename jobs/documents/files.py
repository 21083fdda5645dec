"""What an export can hold and where its file lives: the part of the `export` kind that
the web process needs (to validate a request, to serve a download), without the
rendering libraries (`jobs/documents/parts.py`: fpdf2, python-docx), which only workers load."""

from __future__ import annotations

from jobs.plans import SECTION_KEYS

CONTENT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
FORMATS = tuple(CONTENT_TYPES)
EXTRA_PARTS = ("evaluation", "financial")
PART_KEYS = (*SECTION_KEYS, *EXTRA_PARTS)


def export_name(export_id: str, fmt: str) -> str:
    """The file's name in the export store (`jobs/documents/store.py`)."""
    return f"{export_id}.{fmt}"
