"""Reading the lora_checkpoints stage: its table of checkpoints, how they are named, and the
base model each was trained on. Used by the stages after training and by `bioart review`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from bioart_pipeline.common.files import read_json, read_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.models.profiles import ModelProfile
from bioart_pipeline.specs import LoraSpec
from bioart_pipeline.training.job import REPORT


def trained_profile(spec: LoraSpec, checkpoint_file: Path) -> ModelProfile:
    """The base model a checkpoint was trained on: the spec's, at the hub commit the run
    pinned (the XY plot must load the same weights, the release must name them)."""
    report = read_json(checkpoint_file.parent / REPORT)
    revision = report.get("base_model_revision") or spec.model_profile.revision
    return dataclasses.replace(spec.model_profile, revision=revision)


def checkpoint_table(workspace: Workspace, lora: str) -> pd.DataFrame:
    return read_table(workspace.table("lora_checkpoints", lora))


def checkpoint_labels(checkpoints: pd.DataFrame) -> list[str]:
    """How the XY plot and reviews name checkpoints: "epoch N"."""
    return [f"epoch {epoch}" for epoch in checkpoints["epoch"]]
