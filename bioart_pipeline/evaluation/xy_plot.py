"""Render the XY plot: base pipeline loaded once, checkpoints swapped with the adapter API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from bioart_pipeline.common.charts import wrap_words
from bioart_pipeline.common.files import atomic_path
from bioart_pipeline.evaluation.scoring import BASE_LABEL
from bioart_pipeline.models.families import family_of

# Bump when rendering or scoring changes what an evaluation folder holds: cached evaluations
# made by older code are then redone, not reused. 2: each weight set absolutely before fusing.
# 3: adapters scaled, never fused (fusing and unfusing half weights drifted the base).
# 4: scores carry each cell's verdict under the rule; one legible grid per prompt.
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
    true_cfg_scale: float = 1.0  # Flux only (models/families.py)


def render_xy(pipe, checkpoints: list[Checkpoint], settings: XYSettings, out_dir: Path
              ) -> pd.DataFrame:
    """One row per generated image: prompt, checkpoint, weight, seed, file.
    The base model (weight 0) is rendered first, before any adapter is loaded; each checkpoint
    is then loaded once, scaled to each weight, and deleted: never a model reload."""
    from diffusers.utils import logging as diffusers_logging
    from safetensors.torch import load_file

    from bioart_pipeline.training.pivotal import load_embeddings, split_bundle, unload_embeddings

    # diffusers warns for every UNet-only LoRA that it found no text-encoder keys.
    diffusers_logging.set_verbosity_error()
    rows = _render_cells(pipe, BASE_LABEL, 0.0, settings, out_dir)
    cells = len(checkpoints) * len(settings.weights)
    with tqdm(total=cells, desc="xy plot", unit="cell", leave=False) as progress:
        for index, checkpoint in enumerate(checkpoints):
            adapter = f"ckpt{index}"
            # A pivotal-tuning checkpoint bundles its trigger's vectors: loaded with the LoRA,
            # as the release's embedding file is, and unloaded with it.
            lora, embeddings = split_bundle(load_file(str(checkpoint.file)))
            pipe.load_lora_weights(lora, adapter_name=adapter)
            loaded = load_embeddings(pipe, embeddings)
            for weight in settings.weights:
                # Scaled, not fused into the weights: fusing and unfusing bf16/fp16 weights
                # at every weight drifts them by rounding, and the base would change under
                # the grid. The LoRA layers' extra matmuls are small beside the UNet's.
                pipe.set_adapters([adapter], adapter_weights=[weight])
                rows += _render_cells(pipe, checkpoint.label, weight, settings, out_dir)
                progress.update()
            pipe.delete_adapters([adapter])
            unload_embeddings(pipe, loaded)
    return pd.DataFrame(rows)


def _render_cells(pipe, label: str, weight: float, settings: XYSettings, out_dir: Path
                  ) -> list[dict]:
    """Every prompt x seed of one (checkpoint, weight) cell in a single batch."""
    import torch

    jobs = [(p_index, prompt, seed) for p_index, prompt in enumerate(settings.prompts)
            for seed in settings.seeds]
    images = pipe(prompt=[prompt for _, prompt, _ in jobs],
                  generator=[torch.Generator("cpu").manual_seed(seed) for _, _, seed in jobs],
                  num_inference_steps=settings.steps, height=settings.size, width=settings.size,
                  **family_of(pipe).guidance_options(settings.guidance_scale,
                                                     settings.true_cfg_scale, len(jobs))).images
    rows = []
    for (p_index, prompt, seed), image in zip(jobs, images, strict=True):
        file = out_dir / f"p{p_index}_{label.replace(' ', '')}_w{weight:.2f}_s{seed}.png"
        with atomic_path(file) as tmp:
            image.save(tmp, format="PNG")
        rows.append({"prompt_index": p_index, "prompt": prompt, "checkpoint": label,
                     "weight": weight, "seed": seed, "file": str(file)})
    return rows


OUTLINE = (220, 30, 30)  # the recommended cell's frame


@dataclass(frozen=True)
class GridLayout:
    """Where everything sits in one prompt's grid: the prompt text on top, then columns =
    base + checkpoints, rows = weights (the base column repeats its single image on every
    row). Text is sized to the cells, so it reads wherever the cells do."""

    size: tuple[int, int]
    labels: list[tuple[str, tuple[int, int]]]  # text and its top-left corner
    cells: dict[tuple[str, float], tuple[int, int]]  # (column, weight) -> corner
    font_size: int


def grid_layout(prompt: str, checkpoints: list[str], weights: tuple[float, ...],
                cell: int = 160) -> GridLayout:
    font_size = max(12, cell // 9)
    columns = [BASE_LABEL, *checkpoints]
    label_w = font_size * 4
    width = label_w + len(columns) * cell
    lines = wrap_words(prompt, max(20, int(width / (font_size * 0.55))))
    line_h = font_size + font_size // 3
    prompt_h, header_h = len(lines) * line_h + font_size // 2, line_h + font_size // 3
    labels = [(line, (6, 4 + i * line_h)) for i, line in enumerate(lines)]
    labels += [(column, (label_w + c * cell + 6, prompt_h)) for c, column in enumerate(columns)]
    cells = {}
    for r, weight in enumerate(weights):
        y = prompt_h + header_h + r * cell
        labels.append((f"w {weight:.2f}", (6, y + (cell - font_size) // 2)))
        cells.update({(column, weight): (label_w + c * cell, y)
                      for c, column in enumerate(columns)})
    return GridLayout((width, prompt_h + header_h + len(weights) * cell), labels, cells,
                      font_size)


def grid_images(images: pd.DataFrame, checkpoints: list[str], weights: tuple[float, ...],
                recommended: tuple[str, float] | None = None, cell: int = 160
                ) -> dict[int, Image.Image]:
    """One labelled grid per prompt (prompt index -> image), the first seed of each cell
    shown, the recommended (checkpoint, weight) cell framed."""
    first_seed = images[images["seed"] == images["seed"].min()]
    return {p_index: _prompt_grid(rows, checkpoints, weights, recommended, cell)
            for p_index, rows in first_seed.groupby("prompt_index")}


def _prompt_grid(rows: pd.DataFrame, checkpoints: list[str], weights: tuple[float, ...],
                 recommended: tuple[str, float] | None, cell: int) -> Image.Image:
    layout = grid_layout(rows["prompt"].iloc[0], checkpoints, weights, cell)
    grid = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=layout.font_size)
    for text, corner in layout.labels:
        draw.text(corner, text, fill="black", font=font)
    for (column, weight), corner in layout.cells.items():
        match = rows[(rows["checkpoint"] == column)
                     & ((rows["weight"] == weight) | (column == BASE_LABEL))]
        with Image.open(match["file"].iloc[0]) as image:
            grid.paste(image.convert("RGB").resize((cell, cell)), corner)
    if recommended in layout.cells:
        x, y = layout.cells[recommended]
        draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=OUTLINE,
                       width=max(3, cell // 40))
    return grid


def stack(grids: list[Image.Image], gap: int = 12) -> Image.Image:
    """The prompts' grids one under another (the release's and wandb's single picture)."""
    out = Image.new("RGB", (max(g.width for g in grids),
                            sum(g.height for g in grids) + gap * (len(grids) - 1)), "white")
    y = 0
    for grid in grids:
        out.paste(grid, (0, y))
        y += grid.height + gap
    return out
