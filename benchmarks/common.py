"""What the benchmarks share: drawn flat illustrations, training images, a silent reporter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from bioart_pipeline.training.job import TrainingImage


def illustration(seed: int, size: tuple[int, int] = (512, 512), shapes: int = 8) -> Image.Image:
    """Outlined flat shapes on white, distinct per seed, like the studio's vector work."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    short = min(size)
    for _ in range(shapes):
        w, h = rng.randint(short // 8, short // 3), rng.randint(short // 8, short // 3)
        x, y = rng.randrange(size[0] - w), rng.randrange(size[1] - h)
        draw.ellipse([x, y, x + w, y + h], fill=tuple(rng.randrange(256) for _ in "rgb"),
                     outline="#202030", width=max(2, short // 128))
    return image


def training_images(folder: Path, count: int, size: int = 128) -> tuple[TrainingImage, ...]:
    """`count` illustrations at the tiny model's size, captioned, ready for a TrainingJob."""
    folder.mkdir(parents=True)
    images = []
    for seed in range(count):
        path = folder / f"{seed}.png"
        illustration(seed, (size, size), shapes=4).save(path)
        images.append(TrainingImage(key=f"k{seed}", file=str(path), role="train",
                                    caption=f"trig, cell diagram number {seed}",
                                    bucket=(size, size)))
    return tuple(images)


class Quiet:
    """A training reporter that prints nothing (the benchmark prints the figures)."""

    def log(self, message: str) -> None:
        pass


def cuda_seconds(step: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Mean seconds of `step` on the GPU over `repeats` runs, after `warmup` runs that pay
    for kernel selection."""
    import torch

    timings = []
    for _ in range(warmup + repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        step()
        torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    return sum(timings[warmup:]) / repeats
