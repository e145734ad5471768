"""Validation images during training: the spec's prompts at a fixed seed, so that a run
that has stopped learning or started to overcook is visible while it trains."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from bioart_pipeline.common.charts import captioned_strip
from bioart_pipeline.common.files import atomic_path
from bioart_pipeline.models.families import denoiser_of


@torch.no_grad()
def render_samples(pipe, prompts: tuple[str, ...], seed: int, steps: int, size: int,
                   autocast) -> Image.Image:
    """One image per prompt, side by side, each captioned with its prompt."""
    denoiser = denoiser_of(pipe)
    was_training = denoiser.training
    denoiser.eval()
    with autocast():
        images = pipe(prompt=list(prompts),
                      generator=[torch.Generator("cpu").manual_seed(seed) for _ in prompts],
                      num_inference_steps=steps, height=size, width=size).images
    denoiser.train(was_training)
    return captioned_strip(images, prompts, size)


def save_samples(strip: Image.Image, run_dir: Path, step: int) -> Path:
    path = run_dir / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path) as tmp:
        strip.save(tmp, format="PNG")
    return path
