"""XY-plot speed: one pipeline with adapters swapped versus a pipeline loaded per checkpoint.

    .venv/bin/python benchmarks/xy_plot.py [--checkpoints 4] [--steps 12]

Both render the same grid (a base column, then every checkpoint at 5 weights, 2 prompts x 2
seeds per cell, one batch per cell) from real checkpoints trained by `train_lora` on the tiny
model, in this process:
  1. `render_xy`, what the asset runs: the pipeline loaded once, each checkpoint loaded as an
     adapter, fused at each weight, unfused and deleted;
  2. the baseline a script without the adapter API would run: the pipeline loaded again for
     the base column and for every checkpoint, the LoRA applied unfused at each weight.
Runs on CUDA when there is a GPU (the tiny model; images/s there say little about SDXL).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bioart_pipeline.evaluation.xy_plot import Checkpoint, XYSettings, render_xy
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.training import loop
from bioart_pipeline.training.job import TrainingJob

from common import Quiet, training_images

PROMPTS = ("trig, cross-section of a cell", "cross-section of a cell")
WEIGHTS = (0.4, 0.6, 0.8, 1.0, 1.2)
SEEDS = (1, 2)


def checkpoints(tmp: Path, count: int) -> list[Checkpoint]:
    preset = PRESETS["style"].with_overrides({
        "epochs": count, "save_every_n_epochs": 1, "batch_size": 4, "grad_accumulation": 1,
        "warmup_steps": 0, "rank": 16, "alpha": 16})
    job = TrainingJob(lora="benchmark", profile=get_profile("tiny"), preset=preset,
                      images=training_images(tmp / "images", 8),
                      models_dir=str(tmp / "models"), latent_cache_dir=str(tmp / "cache"),
                      wandb_mode="disabled")
    result = loop.train_lora(job, tmp / "run", Quiet())
    return [Checkpoint(f"epoch {c['epoch']}", tmp / "run" / c["file"])
            for c in result.checkpoints]


def pipeline(models_dir: Path):
    pipe = load_pipeline(get_profile("tiny"), models_dir)
    return pipe.to("cuda" if torch.cuda.is_available() else "cpu")


def swapping(marks: list[Checkpoint], settings: XYSettings, models_dir: Path, out: Path
             ) -> int:
    return len(render_xy(pipeline(models_dir), marks, settings, out))


def reloading(marks: list[Checkpoint], settings: XYSettings, models_dir: Path) -> int:
    prompts = [p for p in settings.prompts for _ in settings.seeds]

    def cell(pipe, weight: float) -> int:
        generators = [torch.Generator("cpu").manual_seed(s)
                      for _ in settings.prompts for s in settings.seeds]
        return len(pipe(prompt=prompts, generator=generators,
                        num_inference_steps=settings.steps,
                        guidance_scale=settings.guidance_scale, height=settings.size,
                        width=settings.size, cross_attention_kwargs={"scale": weight}).images)

    images = cell(pipeline(models_dir), 0.0)
    for mark in marks:
        pipe = pipeline(models_dir)
        pipe.load_lora_weights(str(mark.file))
        images += sum(cell(pipe, weight) for weight in settings.weights)
    return images


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    settings = XYSettings(prompts=PROMPTS, weights=WEIGHTS, seeds=SEEDS, steps=args.steps,
                          guidance_scale=5.0, size=128)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        marks = checkpoints(tmp, args.checkpoints)
        models = tmp / "models"
        load_s, _ = timed(lambda: pipeline(models))
        swap_s, swap_n = timed(lambda: swapping(marks, settings, models, tmp / "xy"))
        reload_s, reload_n = timed(lambda: reloading(marks, settings, models))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else (
        f"{torch.get_num_threads()} CPU threads")
    print(f"tiny model XY plot, {len(marks)} checkpoints x {len(WEIGHTS)} weights + base, "
          f"{len(PROMPTS)} prompts x {len(SEEDS)} seeds, {args.steps} steps, {device}:")
    print(f"  adapter swapping (render_xy): {swap_n} images in {swap_s:.1f} s = "
          f"{swap_n / swap_s:.2f} images/s")
    print(f"  reloading per checkpoint:     {reload_n} images in {reload_s:.1f} s = "
          f"{reload_n / reload_s:.2f} images/s")
    print(f"  swapping is {reload_s / swap_s:.2f}x the speed of reloading; one pipeline load "
          f"here takes {load_s:.2f} s (SDXL's 7 GB take seconds to minutes, so the gap grows "
          "with every checkpoint)")


if __name__ == "__main__":
    main()
