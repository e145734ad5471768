"""Editable captions: one text file per image in the captions output, the human's last word.

The stage writes each caption to `edit/<image path>.txt`. A file whose text differs from what
the stage last wrote was edited by a person: it is kept on later runs, unless its image has
changed since (then the new caption replaces it and the old text is reported, not lost silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bioart_pipeline.common.files import atomic_write_bytes

EDIT_FOLDER = "edit"


@dataclass
class EditOutcome:
    kept: int = 0
    replaced: list[dict[str, str]] = field(default_factory=list)  # path, old edited text


def edit_file(stage_dir: Path, image_path: str) -> Path:
    return stage_dir / EDIT_FOLDER / Path(image_path).with_suffix(".txt")


def apply_edits(rows: list[dict[str, Any]], previous: pd.DataFrame | None, stage_dir: Path
                ) -> EditOutcome:
    """Set each row's final caption and origin from its edit file, then write the files."""
    known = previous is not None and "assembled" in previous  # older tables had no record
    before = previous.set_index("path").to_dict("index") if known else {}
    outcome = EditOutcome()
    for row in rows:
        file = edit_file(stage_dir, row["path"])
        text = file.read_text(encoding="utf-8").strip() if file.is_file() else None
        last = before.get(row["path"])
        if text in (None, row["caption"]) or (last is not None and text == last["assembled"]):
            _write(file, row["caption"])
        elif last is not None and last["source_sha256"] != row["source_sha256"]:
            outcome.replaced.append({"path": row["path"], "edited_caption": text})
            _write(file, row["caption"])
        else:  # a person's edit of an unchanged image (or one we have no record of): keep it
            row["caption"], row["origin"] = text, "edited"
            outcome.kept += 1
    return outcome


def _write(file: Path, caption: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    if not file.is_file() or file.read_text(encoding="utf-8").strip() != caption:
        atomic_write_bytes(file, (caption + "\n").encode("utf-8"))
