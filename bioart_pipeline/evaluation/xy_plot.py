"""Render the XY plot through the renderer (generation/): the base pipeline loaded once, each
checkpoint loaded once and scaled to every weight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from bioart_pipeline.common.charts import wrap_words
from bioart_pipeline.common.files import atomic_path
from bioart_pipeline.evaluation.scoring import BASE_LABEL
from bioart_pipeline.generation.recipe import LoraWeight, Recipe
from bioart_pipeline.generation.renderer import Renderer

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
    is then loaded once, scaled to each weight, and unloaded: never a model reload."""
    renderer = Renderer(pipe)
    rows = _render_cells(renderer, BASE_LABEL, 0.0, (), settings, out_dir)
    cells = len(checkpoints) * len(settings.weights)
    with tqdm(total=cells, desc="xy plot", unit="cell", leave=False) as progress:
        for index, checkpoint in enumerate(checkpoints):
            with renderer.lora(f"ckpt{index}", checkpoint.file) as adapter:
                for weight in settings.weights:
                    rows += _render_cells(renderer, checkpoint.label, weight,
                                          (LoraWeight(adapter, weight),), settings, out_dir)
                    progress.update()
    return pd.DataFrame(rows)


def _render_cells(renderer: Renderer, label: str, weight: float, loras: tuple[LoraWeight, ...],
                  settings: XYSettings, out_dir: Path) -> list[dict]:
    """Every prompt x seed of one (checkpoint, weight) cell, drawn as one batch."""
    jobs = [(p_index, prompt, seed) for p_index, prompt in enumerate(settings.prompts)
            for seed in settings.seeds]
    images = renderer.render([
        Recipe(prompt=prompt, seed=seed, steps=settings.steps,
               guidance_scale=settings.guidance_scale, width=settings.size,
               height=settings.size, loras=loras, true_cfg_scale=settings.true_cfg_scale)
        for _, prompt, seed in jobs])
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
