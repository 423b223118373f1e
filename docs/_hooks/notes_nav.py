"""MkDocs hook: fill the "Notes" nav section with every docs/notes/*.md (sorted by file name).

Pages are titled by their first ``# heading``; adding a note needs no change to mkdocs.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ").capitalize()


def on_config(config: Any) -> Any:
    notes_dir = Path(config["docs_dir"]) / "notes"
    pages = [{_title(p): f"notes/{p.name}"} for p in sorted(notes_dir.glob("*.md"))]
    nav = config["nav"] or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and "Notes" in entry:
            if pages:
                nav[i] = {"Notes": pages}
            else:
                del nav[i]
            break
    return config
