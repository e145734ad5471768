"""Render the XY plot: base pipeline loaded once, checkpoints swapped with the adapter API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image, ImageDraw
from tqdm import tqdm

from bioart_pipeline.common.files import atomic_path
from bioart_pipeline.evaluation.scoring import BASE_LABEL


@dataclass(frozen=True)
class Checkpoint:
    label: str  # e.g. "epoch 10"
    file: Path


@dataclass(frozen=True)
class XYSettings:
    prompts: tuple[str, ...]
    weights: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int
    guidance_scale: float
    size: int


def render_xy(pipe, checkpoints: list[Checkpoint], settings: XYSettings, out_dir: Path
              ) -> pd.DataFrame:
    """One row per generated image: prompt, checkpoint, weight, seed, file.
    The base model (weight 0) is rendered first, before any adapter is loaded; each checkpoint
    is then loaded once, fused at each weight, unfused, and deleted: never a model reload."""
    # diffusers warns for every UNet-only LoRA that it found no text-encoder keys.
    diffusers_logging.set_verbosity_error()
    rows = _render_cells(pipe, BASE_LABEL, 0.0, settings, out_dir)
    cells = len(checkpoints) * len(settings.weights)
    with tqdm(total=cells, desc="xy plot", unit="cell", leave=False) as progress:
        for index, checkpoint in enumerate(checkpoints):
            adapter = f"ckpt{index}"
            pipe.load_lora_weights(str(checkpoint.file), adapter_name=adapter)
            for weight in settings.weights:
                # Merged into the weights for the cell, as ComfyUI applies a LoRA: half the
                # cost of running every LoRA layer unmerged.
                pipe.fuse_lora(lora_scale=weight, adapter_names=[adapter])
                rows += _render_cells(pipe, checkpoint.label, weight, settings, out_dir)
                pipe.unfuse_lora()
                progress.update()
            pipe.delete_adapters([adapter])
    return pd.DataFrame(rows)


def _render_cells(pipe, label: str, weight: float, settings: XYSettings, out_dir: Path
                  ) -> list[dict]:
    """Every prompt x seed of one (checkpoint, weight) cell in a single batch."""
    jobs = [(p_index, prompt, seed) for p_index, prompt in enumerate(settings.prompts)
            for seed in settings.seeds]
    images = pipe(prompt=[prompt for _, prompt, _ in jobs],
                  generator=[torch.Generator("cpu").manual_seed(seed) for _, _, seed in jobs],
                  num_inference_steps=settings.steps, guidance_scale=settings.guidance_scale,
                  height=settings.size, width=settings.size).images
    rows = []
    for (p_index, prompt, seed), image in zip(jobs, images, strict=True):
        file = out_dir / f"p{p_index}_{label.replace(' ', '')}_w{weight:.2f}_s{seed}.png"
        with atomic_path(file) as tmp:
            image.save(tmp, format="PNG")
        rows.append({"prompt_index": p_index, "prompt": prompt, "checkpoint": label,
                     "weight": weight, "seed": seed, "file": str(file)})
    return rows


def grid_image(images: pd.DataFrame, checkpoints: list[str], weights: tuple[float, ...],
               cell: int = 128) -> Image.Image:
    """Labelled grid: one block per prompt; columns = base + checkpoints, rows = weights;
    the first seed of each cell is shown."""
    first_seed = images[images["seed"] == images["seed"].min()]
    columns = [BASE_LABEL, *checkpoints]
    prompts = sorted(first_seed["prompt_index"].unique())
    label_w, header_h, prompt_h = 64, 20, 18
    block_h = prompt_h + header_h + len(weights) * cell
    grid = Image.new("RGB", (label_w + len(columns) * cell, len(prompts) * block_h), "white")
    draw = ImageDraw.Draw(grid)
    for b, p_index in enumerate(prompts):
        top = b * block_h
        rows = first_seed[first_seed["prompt_index"] == p_index]
        draw.text((4, top + 3), f"prompt {p_index}: {rows['prompt'].iloc[0][:90]}", fill="black")
        for c, column in enumerate(columns):
            draw.text((label_w + c * cell + 4, top + prompt_h + 3), column, fill="black")
        for r, weight in enumerate(weights):
            y = top + prompt_h + header_h + r * cell
            draw.text((4, y + cell // 2 - 6), f"w {weight:.2f}", fill="black")
            for c, column in enumerate(columns):
                match = rows[(rows["checkpoint"] == column)
                             & ((rows["weight"] == weight) | (column == BASE_LABEL))]
                with Image.open(match["file"].iloc[0]) as image:
                    grid.paste(image.convert("RGB").resize((cell, cell)),
                               (label_w + c * cell, y))
    return grid
