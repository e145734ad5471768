"""The xy_plot_evaluation stage: one folder per evaluation, keyed by what it evaluated.

Folder contents: `images/` (every generated image), `images.parquet`, `xy_grid.png`,
`scores.parquet` (one row per checkpoint x weight) and `recommendation.json`, written last:
a folder without it is unfinished and is redone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from PIL import Image

from bioart_pipeline.common.files import (
    atomic_path,
    atomic_write_json,
    read_json,
    read_table,
    sha256_json,
    write_table,
)
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.common.tracking import Tracker
from bioart_pipeline.evaluation.clip_scores import ClipScorer
from bioart_pipeline.evaluation.scoring import Thresholds, recommend, score_cells
from bioart_pipeline.evaluation.xy_plot import (
    EVALUATION_VERSION,
    Checkpoint,
    XYSettings,
    grid_image,
    render_xy,
)

SCORES = "scores.parquet"
RECOMMENDATION = "recommendation.json"
GRID = "xy_grid.png"
IMAGES = "images.parquet"


def evaluation_key(checkpoint_hashes: list[str], settings: XYSettings, trigger: str,
                   thresholds: Thresholds, clip_source: str | None) -> str:
    return sha256_json([checkpoint_hashes, settings, trigger, thresholds, clip_source,
                        EVALUATION_VERSION])[:16]


def evaluate(load_pipeline: Callable, checkpoints: list[Checkpoint], settings: XYSettings,
             training: list[Image.Image], trigger: str, thresholds: Thresholds, folder: Path,
             tracker: Tracker, load_clip: Callable[[], ClipScorer] | None = None
             ) -> pd.DataFrame:
    """Render, score and recommend into `folder` (and the tracker); returns the image table.
    The pipeline is released before CLIP loads, so both never share the GPU."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images = render_xy(load_pipeline(), checkpoints, settings, folder / "images")
    clip = load_clip() if load_clip else None
    scores = score_cells(images, training, trigger, clip)
    recommendation = recommend(scores, thresholds, clip)
    grid = grid_image(images, [c.label for c in checkpoints], settings.weights)
    with atomic_path(folder / GRID) as tmp:
        grid.save(tmp, format="PNG")
    write_table(images, folder / IMAGES)
    write_table(scores, folder / SCORES)
    tracker.log_image(None, "xy_grid", grid, "columns: base + checkpoints; rows: LoRA weights")
    tracker.log_table("xy_scores", scores.round(4).to_dict("records"))
    tracker.log(None, {"recommended_weight": recommendation["weight"] or 0.0,
                       "usable_cells": recommendation["usable_cells"]})
    tracker.finish()
    atomic_write_json(folder / RECOMMENDATION, recommendation)  # last: marks the folder done
    return images


def is_complete(folder: Path) -> bool:
    return (folder / RECOMMENDATION).exists()


def current_evaluation(workspace: Workspace, lora: str) -> tuple[str, dict]:
    """The evaluation key and recommendation that the stage's latest table points at."""
    scores = read_table(workspace.table("xy_plot_evaluation", lora))
    key = scores["evaluation"].iloc[0]
    return key, read_json(evaluation_folder(workspace, lora, key) / RECOMMENDATION)


def evaluation_folder(workspace: Workspace, lora: str, key: str) -> Path:
    return workspace.stage_dir("xy_plot_evaluation", lora) / key
