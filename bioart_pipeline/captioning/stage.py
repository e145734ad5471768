"""The captions stage: one caption per usable image, with where it came from.

Precedence: an edit in the captions output (unless its image changed) > the artist's sidecar
caption next to the source image > the captioning model. Each row records its origin:
"artist", "edited", or "<model> <task> terms:<terminology version>".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bioart_pipeline.captioning.assembly import (
    CaptionRules,
    assemble_artist_caption,
    assemble_model_caption,
)
from bioart_pipeline.captioning.edits import EditOutcome, apply_edits
from bioart_pipeline.portfolio.ingest import CAPTION_SUFFIX

COLUMNS = ["source_sha256", "key", "path", "role", "caption", "origin", "raw_caption",
           "assembled", "generated_by", "replacements", "truncated", "tokens"]

# image key -> preprocessed file in; (key -> model caption, newly captioned) out
ModelCaptions = Callable[[dict[str, Path]], tuple[dict[str, str], int]]


class CaptionsMissing(RuntimeError):
    """Images without an artist caption while no captioning model is configured."""


@dataclass
class CaptionResult:
    table: pd.DataFrame
    model_captioned: int = 0  # images that went through the model this run (cache misses)
    edits: EditOutcome = field(default_factory=EditOutcome)


def caption_sidecar(source: Path) -> Path:
    return source.with_suffix(CAPTION_SUFFIX)


def caption_images(preprocessed: pd.DataFrame, resolve: Callable[[str], Path],
                   preprocessed_file: Callable[[str], Path], rules: CaptionRules,
                   model: ModelCaptions | None, model_origin: str | None,
                   previous: pd.DataFrame | None, stage_dir: Path) -> CaptionResult:
    """Captions for every row with status "ok". `resolve` maps a table path to its source
    file, `preprocessed_file` a key to the composited image the model looks at."""
    usable = preprocessed[preprocessed["status"] == "ok"].sort_values("path")
    records = usable.to_dict("records")
    sidecars = {r["key"]: caption_sidecar(resolve(r["path"])) for r in records}
    need_model = {r["key"]: preprocessed_file(r["key"]) for r in records
                  if not sidecars[r["key"]].is_file()}
    if need_model and model is None:
        paths = [r["path"] for r in records if r["key"] in need_model]
        raise CaptionsMissing(
            f"{len(paths)} image(s) have no caption sidecar ({CAPTION_SUFFIX} beside the image) "
            f"and no captioning model is configured: {paths[:5]}. Write the captions, or set "
            "BIOART_CAPTION_MODEL to a Florence-2 model (a local folder or hub id).")
    generated, captioned = model(need_model) if need_model else ({}, 0)
    origin = f"{model_origin} terms:{rules.terminology.version}"
    rows = [_row(r, sidecars[r["key"]], generated, rules, origin) for r in records]
    edits = apply_edits(rows, previous, stage_dir)
    for row in rows:  # after the edits: a person's edit is counted too, never cut
        row["tokens"] = rules.count_tokens(row["caption"]) if rules.count_tokens else 0
    return CaptionResult(pd.DataFrame(rows, columns=COLUMNS), captioned, edits)


def _row(record: dict[str, Any], sidecar: Path, generated: dict[str, str], rules: CaptionRules,
         model_origin: str) -> dict[str, Any]:
    # Regularization images teach the base concept: they must not carry the trigger.
    trigger = record["role"] == "train"
    composited = bool(record.get("composited", False))
    if sidecar.is_file():
        raw = sidecar.read_text(encoding="utf-8").strip()
        assembled = assemble_artist_caption(raw, rules, composited, trigger)
        fired, origin = [], "artist"
    else:
        raw = generated[record["key"]]
        assembled, fired = assemble_model_caption(raw, rules, composited, trigger)
        origin = model_origin
    caption = assembled.caption
    return {"source_sha256": record["source_sha256"], "key": record["key"],
            "path": record["path"], "role": record["role"], "caption": caption,
            "origin": origin, "raw_caption": raw, "assembled": caption, "generated_by": origin,
            "replacements": "; ".join(fired), "truncated": assembled.truncated}
