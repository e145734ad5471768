"""The captions stage: one caption per usable image, with where it came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bioart_pipeline.captioning.terminology import Terminology, tidy
from bioart_pipeline.portfolio.ingest import CAPTION_SUFFIX


class CaptionsMissing(RuntimeError):
    """Images without an artist caption while no captioning model is configured."""


def caption_sidecar(source: Path) -> Path:
    return source.with_suffix(CAPTION_SUFFIX)


def assemble(text: str, trigger: str, lora_type: str, terminology: Terminology,
             apply_terms: bool) -> tuple[str, list[str]]:
    """Trigger word first; terminology on model captions; style words out for style LoRAs
    (the LoRA must learn the look itself, not from the words)."""
    fired: list[str] = []
    if apply_terms:
        text, fired = terminology.apply(text)
    if lora_type == "style":
        text = terminology.strip_style(text)
    return tidy(f"{trigger}, {text}"), fired


def caption_images(preprocessed: pd.DataFrame, resolve: Any, trigger: str, lora_type: str,
                   terminology: Terminology) -> pd.DataFrame:
    """Captions for every row with status "ok". `resolve` maps a table path to its file."""
    usable = preprocessed[preprocessed["status"] == "ok"]
    rows, missing = [], []
    for record in usable.sort_values("path").to_dict("records"):
        sidecar = caption_sidecar(resolve(record["path"]))
        if not sidecar.is_file():
            missing.append(record["path"])
            continue
        raw = sidecar.read_text(encoding="utf-8").strip()
        # Regularization images teach the base concept: they must not carry the trigger.
        own_trigger = trigger if record["role"] == "train" else ""
        caption, fired = assemble(raw, own_trigger, lora_type, terminology, apply_terms=False)
        rows.append({"source_sha256": record["source_sha256"], "key": record["key"],
                     "path": record["path"], "caption": caption, "raw_caption": raw,
                     "origin": "artist", "replacements": "; ".join(fired)})
    if missing:
        raise CaptionsMissing(
            f"{len(missing)} image(s) have no caption sidecar ({CAPTION_SUFFIX} beside the image) "
            f"and no captioning model is configured: {missing[:5]}. Write the captions, or "
            "configure the Florence-2 captioner with a local model path."
        )
    return pd.DataFrame(rows, columns=["source_sha256", "key", "path", "caption", "raw_caption",
                                       "origin", "replacements"])
