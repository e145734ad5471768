"""The xy_plot_evaluation stage: one folder per evaluation, keyed by what it evaluated.

Folder contents: `images/` (every generated image), `images.parquet` (their files relative
to the folder), `xy_grid.png`, `scores.parquet` (one row per checkpoint x weight) and
`recommendation.json`, written last: a folder without it is unfinished and is redone.
It runs as an XYJob on the compute resource: rendering and CLIP want the GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

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
from bioart_pipeline.common.reporting import Reporter
from bioart_pipeline.common.tracking import Tracker
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.evaluation.clip_scores import ClipScorer
from bioart_pipeline.evaluation.scoring import judge_cells, recommend, score_cells
from bioart_pipeline.evaluation.xy_plot import (
    EVALUATION_VERSION,
    Checkpoint,
    XYSettings,
    grid_images,
    render_xy,
    stack,
)
from bioart_pipeline.models.profiles import ModelProfile, load_pipeline
from bioart_pipeline.specs.thresholds import Thresholds

SCORES = "scores.parquet"
RECOMMENDATION = "recommendation.json"
GRID = "xy_grid.png"  # every prompt's grid, stacked
IMAGES = "images.parquet"


def prompt_grid_file(prompt_index: int) -> str:
    """One prompt's grid (0-based index), as the UI shows it."""
    return f"xy_grid_prompt_{prompt_index + 1}.png"


@dataclass(frozen=True)
class XYJob:
    """One evaluation: the checkpoints, the grid's settings, the training images the
    memorization and style measures compare against, and the CLIP model ("" = none)."""

    kind: ClassVar[str] = "xy_plot"
    done_file: ClassVar[str] = RECOMMENDATION

    lora: str
    profile: ModelProfile
    checkpoints: tuple[Checkpoint, ...]
    settings: XYSettings
    training_images: tuple[str, ...]
    trigger: str
    thresholds: Thresholds
    clip_model: str
    models_dir: str
    tracking_name: str
    wandb_mode: str = "offline"
    wandb_project: str = "bioart_pipeline"
    placement: Placement = Placement()

    def shipment(self) -> tuple[XYJob, dict[str, Path]]:
        checkpoints = tuple(dataclasses.replace(c, file=Path(f"checkpoints/{i}_{c.file.name}"))
                            for i, c in enumerate(self.checkpoints))
        training = tuple(f"training/{i}{Path(f).suffix}"
                         for i, f in enumerate(self.training_images))
        files = {**{str(c.file): o.file for c, o in zip(checkpoints, self.checkpoints,
                                                          strict=True)},
                 **dict(zip(training, map(Path, self.training_images), strict=True))}
        return dataclasses.replace(self, checkpoints=checkpoints, training_images=training,
                                   models_dir=""), files

    def unpacked(self, workdir: Path, models_dir: Path) -> XYJob:
        return dataclasses.replace(
            self, checkpoints=tuple(dataclasses.replace(c, file=workdir / c.file)
                                    for c in self.checkpoints),
            training_images=tuple(str(workdir / f) for f in self.training_images),
            models_dir=str(models_dir))


def run_xy_job(job: XYJob, folder: Path, reporter: Reporter) -> None:
    """The compute entrypoint's runner: the pipeline and CLIP on the job's device and dtype."""
    device, dtype = job.placement.torch_device(), job.placement.torch_dtype()
    models_dir = Path(job.models_dir)

    def load_base():
        pipe = load_pipeline(job.profile, models_dir, dtype).to(device)
        # The family's sampler whatever the base ships (SD 1.5: PNDM, here Euler): the one
        # the release's ComfyUI workflow and A1111 line name, so the approved weight means
        # the same there. Flux keeps its flow-matching Euler.
        sampler = job.profile.family.sampler
        if sampler is not None:
            pipe.scheduler = sampler.from_config(pipe.scheduler.config)
        return pipe

    def load_clip() -> ClipScorer:
        return ClipScorer(job.clip_model, models_dir, device, dtype)

    training = [Image.open(f).convert("RGB") for f in job.training_images]
    tracker = Tracker(job.wandb_mode, job.wandb_project, folder, job.tracking_name,
                      {"lora": job.lora, **dataclasses.asdict(job.settings)})
    images = evaluate(load_base, list(job.checkpoints), job.settings, training, job.trigger,
                      job.thresholds, folder, tracker, load_clip if job.clip_model else None)
    reporter.log(f"XY plot: {len(images)} images for {len(job.checkpoints)} checkpoint(s)")


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
    scores = judge_cells(score_cells(images, training, trigger, clip), thresholds, clip)
    recommendation = recommend(scores, thresholds, clip)
    recommended = ((recommendation["checkpoint"], recommendation["weight"])
                   if recommendation["passes"] else None)
    grids = grid_images(images, [c.label for c in checkpoints], settings.weights, recommended)
    for p_index, prompt_grid in grids.items():
        with atomic_path(folder / prompt_grid_file(p_index)) as tmp:
            prompt_grid.save(tmp, format="PNG")
    grid = stack(list(grids.values()))
    with atomic_path(folder / GRID) as tmp:
        grid.save(tmp, format="PNG")
    relative = images["file"].map(lambda f: Path(f).relative_to(folder).as_posix())
    write_table(images.assign(file=relative), folder / IMAGES)
    write_table(scores, folder / SCORES)
    tracker.log_image(None, "xy_grid", grid, "per prompt: columns base + checkpoints, rows LoRA "
                      "weights; the recommended cell framed in red")
    tracker.log_table("xy_scores", scores.round(4).to_dict("records"))
    tracker.log(None, {"recommended_weight": recommendation["weight"] or 0.0,
                       "usable_cells": recommendation["usable_cells"]})
    tracker.finish()
    atomic_write_json(folder / RECOMMENDATION, recommendation)  # last: marks the folder done
    return images


def current_evaluation(workspace: Workspace, lora: str) -> tuple[str, dict]:
    """The evaluation key and recommendation that the stage's latest table points at."""
    scores = read_table(workspace.table("xy_plot_evaluation", lora))
    key = scores["evaluation"].iloc[0]
    return key, read_json(evaluation_folder(workspace, lora, key) / RECOMMENDATION)


def evaluation_folder(workspace: Workspace, lora: str, key: str) -> Path:
    return workspace.stage_dir("xy_plot_evaluation", lora) / key


def cell_images(folder: Path, checkpoint: str, weight: float) -> list[tuple[str, Path]]:
    """(prompt, image file) of one grid cell for every prompt, first seed: what a checkpoint
    at a weight draws. Empty when that weight was not evaluated."""
    images = read_table(folder / IMAGES)
    cell = images[(images["checkpoint"] == checkpoint) & (images["weight"] == weight)]
    first = cell.sort_values(["prompt_index", "seed"]).groupby("prompt_index").head(1)
    return [(row.prompt, folder / row.file) for row in first.itertuples()]
