"""The one Definitions object, and the one place that picks the environment."""

from __future__ import annotations

import os

import dagster as dg

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.orchestration import checks, sensors
from bioart_pipeline.orchestration.assets import (
    captioning,
    evaluation,
    licensing,
    portfolio,
    preprocessing,
    release,
    review,
    training,
)
from bioart_pipeline.orchestration.jobs import lora_pipeline, lora_retraining
from bioart_pipeline.orchestration.resources import (
    CaptionModel,
    ClipModel,
    StudioData,
    Tracking,
    TrainingCompute,
)


def build_definitions(workspace: Workspace | None = None,
                      caption_model: str | None = None) -> dg.Definitions:
    """Environment variables read here and nowhere else: BIOART_DATA_DIR,
    BIOART_OUTPUTS_DIR, BIOART_WANDB_MODE, BIOART_CAPTION_MODEL, BIOART_CLIP_MODEL,
    BIOART_RETRAIN_CRON."""
    workspace = workspace or Workspace.from_env()
    if caption_model is None:
        caption_model = os.environ.get("BIOART_CAPTION_MODEL", "")
    stage_modules = [portfolio, preprocessing, captioning, licensing, training, evaluation,
                     review, release]
    return dg.Definitions(
        assets=dg.load_assets_from_modules(stage_modules),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[lora_pipeline, lora_retraining],
        sensors=[sensors.retraining_sensor],
        schedules=[sensors.retraining_schedule(os.environ.get("BIOART_RETRAIN_CRON",
                                                              "0 3 * * 1"))],
        resources={
            "studio": StudioData(data_dir=str(workspace.data_dir),
                                 outputs_dir=str(workspace.outputs_dir)),
            "captioner": CaptionModel(model=caption_model),
            "clip": ClipModel(model=os.environ.get("BIOART_CLIP_MODEL", "")),
            "tracking": Tracking(mode=os.environ.get("BIOART_WANDB_MODE", "offline")),
            "compute": TrainingCompute(),
        },
    )


defs = build_definitions()
