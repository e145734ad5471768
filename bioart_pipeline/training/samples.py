"""Validation images during training: the spec's prompts at a fixed seed, so that a run
that has stopped learning or started to overcook is visible while it trains."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from bioart_pipeline.common.charts import wrap_words
from bioart_pipeline.common.files import atomic_path


@torch.no_grad()
def render_samples(pipe, prompts: tuple[str, ...], seed: int, steps: int, size: int,
                   autocast) -> Image.Image:
    """One image per prompt, side by side, each captioned with its prompt."""
    was_training = pipe.unet.training
    pipe.unet.eval()
    with autocast():
        images = pipe(prompt=list(prompts),
                      generator=[torch.Generator("cpu").manual_seed(seed) for _ in prompts],
                      num_inference_steps=steps, height=size, width=size).images
    pipe.unet.train(was_training)
    return captioned_strip(images, prompts, size)


def captioned_strip(images: list[Image.Image], prompts: tuple[str, ...], size: int
                    ) -> Image.Image:
    """The images side by side, each with its prompt wrapped underneath."""
    font_size = max(11, size // 16)
    font = ImageFont.load_default(size=font_size)
    captions = [wrap_words(p, max(12, int(size / (font_size * 0.55)))) for p in prompts]
    line_h = font_size + font_size // 4
    strip = Image.new("RGB", (size * len(images),
                              size + max(map(len, captions)) * line_h + font_size // 2), "white")
    draw = ImageDraw.Draw(strip)
    for index, (image, lines) in enumerate(zip(images, captions, strict=True)):
        strip.paste(image.convert("RGB").resize((size, size)), (index * size, 0))
        for row, line in enumerate(lines):
            draw.text((index * size + 3, size + 2 + row * line_h), line, fill="black",
                      font=font)
    return strip


def save_samples(strip: Image.Image, run_dir: Path, step: int) -> Path:
    path = run_dir / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(exist_ok=True)
    with atomic_path(path) as tmp:
        strip.save(tmp, format="PNG")
    return path
