"""Exported documents: what an export holds and where its file lives (`files.py`,
`store.py`: the web process needs them), and the rendering (`parts.py`, `office.py`:
fpdf2 and python-docx, loaded by workers only)."""
