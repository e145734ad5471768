"""Cached training inputs: VAE latents per image and bucket, text embeddings per caption.

Encoding once instead of every step is the main speed and memory win of LoRA training.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from bioart_pipeline.common.files import atomic_path
from bioart_pipeline.models.families import Family
from bioart_pipeline.training.job import TrainingImage


@dataclass
class TextEmbedding:
    prompt_embeds: torch.Tensor  # (77, hidden): SDXL concatenates its two encoders' hidden
    pooled: torch.Tensor | None  # SDXL: te2's projection; None for SD 1.5


@torch.no_grad()
def cache_latents(vae: torch.nn.Module, images: tuple[TrainingImage, ...], folder: Path,
                  device: torch.device) -> tuple[dict[str, torch.Tensor], int]:
    """Latent (C, h, w) per image key, scaled for the UNet; returns (latents, newly encoded)."""
    latents, encoded = {}, 0
    for image in tqdm(images, desc="cache latents", unit="img", leave=False):
        path = folder / f"{image.key}.safetensors"
        if not path.exists():
            _encode_to(vae, image, path, device)
            encoded += 1
        latents[image.key] = load_file(path)["latents"]
    return latents, encoded


def _encode_to(vae: torch.nn.Module, image: TrainingImage, path: Path, device: torch.device
               ) -> None:
    latent = encode_latent(vae, image, device)
    with atomic_path(path) as tmp:
        save_file({"latents": latent.cpu().contiguous()}, str(tmp))


@torch.no_grad()
def encode_latent(vae: torch.nn.Module, image: TrainingImage, device: torch.device
                  ) -> torch.Tensor:
    """The image's latent (C, h, w), scaled for the UNet; refuses non-finite output."""
    pixels = np.asarray(Image.open(image.file).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    if (pixels.shape[1], pixels.shape[0]) != tuple(image.bucket):
        raise ValueError(f"{image.file} is {pixels.shape[1]}x{pixels.shape[0]}, "
                         f"expected its bucket {image.bucket}")
    batch = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).to(device, vae.dtype)
    # The distribution mean: deterministic, and what the cache key promises. Flux's VAE
    # shifts before scaling.
    shift = vae.config.get("shift_factor") or 0.0
    latent = (vae.encode(batch).latent_dist.mean[0].float() - shift) * vae.config.scaling_factor
    if not torch.isfinite(latent).all():
        raise ValueError(f"the VAE ({vae.dtype}) produced NaN/inf latents for {image.file}: "
                         "the SDXL VAE overflows in fp16; encode in fp32 or use the "
                         "fp16-fix VAE (madebyollin/sdxl-vae-fp16-fix)")
    return latent


@torch.no_grad()
def encode_captions(pipe, family: Family, captions: list[str], device: torch.device
                    ) -> dict[str, TextEmbedding]:
    """Frozen text encoders: every distinct caption (and "" for caption dropout) once."""
    out = {}
    for caption in tqdm(sorted(set(captions) | {""}), desc="encode captions", leave=False):
        embeds, pooled = family.encode(pipe, [caption], device)
        out[caption] = TextEmbedding(embeds[0].float().cpu(),
                                     None if pooled is None else pooled[0].float().cpu())
    return out


def without_trigger(caption: str, trigger: str) -> str:
    """The caption with its trigger word taken out ("cellulastyle, a cell" -> "a cell"); a
    longer word that starts with the trigger stays."""
    if not trigger:
        return caption
    cut = re.sub(rf"(?<![\w-]){re.escape(trigger)}(?![\w-])", "", caption)
    return re.sub(r"\s*,(\s*,)+\s*", ", ", cut).strip(" ,")


def bucket_batches(images: tuple[TrainingImage, ...], batch_size: int, epoch_seed: int
                   ) -> list[list[TrainingImage]]:
    """Shuffled batches, each from one bucket (tensors in a batch must share a shape)."""
    rng = random.Random(epoch_seed)
    by_bucket: dict[tuple[int, int], list[TrainingImage]] = defaultdict(list)
    for image in images:
        by_bucket[tuple(image.bucket)].append(image)
    batches = []
    for bucket in sorted(by_bucket):
        members = by_bucket[bucket][:]
        rng.shuffle(members)
        batches += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    rng.shuffle(batches)
    return batches


def time_ids(image: TrainingImage, source_sizes: bool) -> torch.Tensor:
    """SDXL micro-conditioning as (h, w) pairs: original size, crop top-left, target size.
    With `source_sizes` (as SDXL was trained, and kohya trains) the source image's size and
    its real crop offset; without, the bucket's size and no crop, for a base model that was
    trained that way (the tiny one)."""
    width, height = image.bucket
    original_w, original_h = image.original_size or image.bucket
    left, top = image.crop_left_top
    if not source_sizes:
        original_w, original_h, left, top = width, height, 0, 0
    return torch.tensor([original_h, original_w, top, left, height, width],
                        dtype=torch.float32)
