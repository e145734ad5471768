"""What the benchmarks share: drawn flat illustrations, training images, a silent reporter,
SDXL's UNet config."""

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


# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280), cross_attention_dim=2048,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)


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
