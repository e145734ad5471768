"""The GPU jobs every compute backend runs: training, the XY plot, captioning.

A job is a frozen dataclass saved as one JSON file (its `kind` first); a runner function
reads it and writes its outputs into one folder, `done_file` last, so a folder without it is
unfinished, never a result. Both live in their own stage; this module only names them, and
imports a stage when a job of its kind is loaded or run.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bioart_pipeline.common.files import atomic_write_json, read_json
from bioart_pipeline.common.records import from_dict
from bioart_pipeline.common.reporting import Reporter
from bioart_pipeline.compute.placement import Placement


@dataclass(frozen=True)
class JobKind:
    title: str  # what log lines and failure messages call it
    job: str  # the job class, as "module:name"
    runner: str  # runner(job, out_dir, reporter), as "module:name"


KINDS: dict[str, JobKind] = {
    "training": JobKind("training", "bioart_pipeline.training.job:TrainingJob",
                        "bioart_pipeline.training.loop:run_training_job"),
    "xy_plot": JobKind("XY plot", "bioart_pipeline.evaluation.stage:XYJob",
                       "bioart_pipeline.evaluation.stage:run_xy_job"),
    "captioning": JobKind("captioning", "bioart_pipeline.captioning.florence:CaptionJob",
                          "bioart_pipeline.captioning.florence:run_caption_job"),
}


class GpuJob(Protocol):
    kind: ClassVar[str]
    done_file: ClassVar[str]
    placement: Placement

    def shipment(self) -> tuple[GpuJob, dict[str, Path]]:
        """The job with paths relative to an archive, and the files to put in it by name."""
        ...

    def unpacked(self, workdir: Path, models_dir: Path) -> GpuJob:
        """The shipped job with its paths under `workdir` and models built in `models_dir`."""
        ...


def save_job(job: GpuJob, path: Path) -> Path:
    return atomic_write_json(path, {"kind": job.kind, **dataclasses.asdict(job)})  # type: ignore[call-overload]


def load_job(path: Path) -> Any:
    raw = read_json(path)
    kind = raw.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"{path}: unknown job kind {kind!r}; known: {sorted(KINDS)}")
    return from_dict(_named(KINDS[kind].job), raw)


def run_job(job: GpuJob, out_dir: Path, reporter: Reporter) -> None:
    _named(KINDS[job.kind].runner)(job, out_dir, reporter)


def title(kind: str) -> str:
    return KINDS[kind].title if kind in KINDS else "the job"


def _named(reference: str) -> Any:
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)
