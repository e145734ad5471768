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

# Bump when rendering or scoring changes what an evaluation folder holds: cached evaluations
# made by older code are then redone, not reused. 2: each weight set absolutely before fusing.
# 3: adapters scaled, never fused (fusing and unfusing half weights drifted the base).
# 4: scores carry each cell's verdict under the rule.
EVALUATION_VERSION = 4


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
    is then loaded once, scaled to each weight, and deleted: never a model reload."""
    # diffusers warns for every UNet-only LoRA that it found no text-encoder keys.
    diffusers_logging.set_verbosity_error()
    rows = _render_cells(pipe, BASE_LABEL, 0.0, settings, out_dir)
    cells = len(checkpoints) * len(settings.weights)
    with tqdm(total=cells, desc="xy plot", unit="cell", leave=False) as progress:
        for index, checkpoint in enumerate(checkpoints):
            adapter = f"ckpt{index}"
            pipe.load_lora_weights(str(checkpoint.file), adapter_name=adapter)
            for weight in settings.weights:
                # Scaled, not fused into the weights: fusing and unfusing bf16/fp16 weights
                # at every weight drifts them by rounding, and the base would change under
                # the grid. The LoRA layers' extra matmuls are small beside the UNet's.
                pipe.set_adapters([adapter], adapter_weights=[weight])
                rows += _render_cells(pipe, checkpoint.label, weight, settings, out_dir)
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


@dataclass(frozen=True)
class GridLayout:
    """Where everything sits in the grid: one block per prompt; columns = base + checkpoints,
    rows = weights (the base column repeats its single image on every row)."""

    size: tuple[int, int]
    labels: list[tuple[str, tuple[int, int]]]  # text and its top-left corner
    cells: dict[tuple[int, str, float], tuple[int, int]]  # (prompt, column, weight) -> corner


def grid_layout(prompts: dict[int, str], checkpoints: list[str], weights: tuple[float, ...],
                cell: int = 128) -> GridLayout:
    columns = [BASE_LABEL, *checkpoints]
    label_w, header_h, prompt_h = 64, 20, 18
    block_h = prompt_h + header_h + len(weights) * cell
    labels, cells = [], {}
    for block, (p_index, prompt) in enumerate(sorted(prompts.items())):
        top = block * block_h
        labels.append((f"prompt {p_index}: {prompt[:90]}", (4, top + 3)))
        labels += [(column, (label_w + c * cell + 4, top + prompt_h + 3))
                   for c, column in enumerate(columns)]
        for r, weight in enumerate(weights):
            y = top + prompt_h + header_h + r * cell
            labels.append((f"w {weight:.2f}", (4, y + cell // 2 - 6)))
            cells.update({(p_index, column, weight): (label_w + c * cell, y)
                          for c, column in enumerate(columns)})
    return GridLayout((label_w + len(columns) * cell, len(prompts) * block_h), labels, cells)


def grid_image(images: pd.DataFrame, checkpoints: list[str], weights: tuple[float, ...],
               cell: int = 128) -> Image.Image:
    """The labelled XY grid (see GridLayout); the first seed of each cell is shown."""
    first_seed = images[images["seed"] == images["seed"].min()]
    prompts = dict(zip(first_seed["prompt_index"], first_seed["prompt"], strict=True))
    layout = grid_layout(prompts, checkpoints, weights, cell)
    grid = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(grid)
    for text, corner in layout.labels:
        draw.text(corner, text, fill="black")
    for (p_index, column, weight), corner in layout.cells.items():
        match = first_seed[(first_seed["prompt_index"] == p_index)
                           & (first_seed["checkpoint"] == column)
                           & ((first_seed["weight"] == weight) | (column == BASE_LABEL))]
        with Image.open(match["file"].iloc[0]) as image:
            grid.paste(image.convert("RGB").resize((cell, cell)), corner)
    return grid
