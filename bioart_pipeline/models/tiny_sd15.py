"""A tiny model with SD 1.5's architecture, built offline and deterministically: one CLIP text
encoder (CLIP's real tokenizer) and a UNet without SDXL's added size and pooled-text
conditioning, so the SD 1.5 code paths (loading, training, kohya export, evaluation) run on
the CPU in the demo and the tests.

Its UNet is pretrained by `bioart build-base --family sd15` on the textbook corpus (weights in
`textbook_tiny_sd15/`, see its README); its VAE is textbook-tiny's (SD 1.5 and SDXL share the
VAE architecture); its text encoder stays at its seeded initialisation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from bioart_pipeline.models import tiny_sdxl
from bioart_pipeline.models.builtin import TEXTBOOK_TINY_SD15
from bioart_pipeline.models.clip_tokenizer import EOS, write_clip_tokenizer

PRETRAINED_DIR = TEXTBOOK_TINY_SD15  # version and fingerprint: builtin.py


# SD 1.5's block layout, only narrower, so that a LoRA trained here carries the module names a
# real SD 1.5 has (runwayml/stable-diffusion-v1-5 unet/config.json): attention in the first three
# levels, none in the last, one transformer layer per block, 1x1 convolutions as proj_in/out.
UNET_SHAPE = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 48, 64, 64),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    mid_block_type="UNetMidBlock2DCrossAttn",
    attention_head_dim=(1, 2, 2, 2),  # diffusers' name for the number of heads
    transformer_layers_per_block=1,
    use_linear_projection=False,
    norm_num_groups=tiny_sdxl.NORM_GROUPS,
    cross_attention_dim=tiny_sdxl.TE1_HIDDEN,
)


def random_unet() -> UNet2DConditionModel:
    return tiny_sdxl.seeded(lambda: UNet2DConditionModel(**UNET_SHAPE))


def text_encoder() -> CLIPTextModel:
    """SD 1.5's encoder is CLIP ViT-L's text tower, as SDXL's first: the same tiny one."""
    return tiny_sdxl.text_encoders()[0]


def write_sd15_folder(folder: Path, models: dict[str, torch.nn.Module],
                      save: tuple[str, ...] | None = None) -> None:
    """A diffusers SD 1.5 folder from its three models (unet, vae, text_encoder): CLIP's real
    tokenizer, an Euler scheduler on SD's noise schedule (as the XY plot samples),
    model_index.json, and the models named in `save` (all by default) as safetensors."""
    tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(folder / "tokenizer",
                                                                   pad_token=EOS))
    for name in save if save is not None else tuple(models):
        models[name].save_pretrained(folder / name, safe_serialization=True)
    scheduler = EulerDiscreteScheduler(**tiny_sdxl.SCHEDULER_CONFIG)
    scheduler.save_pretrained(folder / "scheduler")
    StableDiffusionPipeline(**models, tokenizer=tokenizer, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_config(folder)


def _write(folder: Path, pretrained: bool) -> None:
    """The UNet copied from the pretrained base or at its seeded start; textbook-tiny's VAE."""
    tiny_sdxl.check_pretrained_files()
    shutil.copytree(tiny_sdxl.PRETRAINED_DIR / "vae", folder / "vae")
    models = {"unet": random_unet(), "text_encoder": text_encoder(),
              "vae": tiny_sdxl.AutoencoderKL.from_pretrained(folder / "vae")}
    if pretrained:
        tiny_sdxl.check_pretrained((models["text_encoder"],), PRETRAINED_DIR)
        shutil.copytree(PRETRAINED_DIR / "unet", folder / "unet")
    write_sd15_folder(folder, models,
                      save=("text_encoder",) if pretrained else ("text_encoder", "unet"))


def build_tiny_sd15(folder: Path, pretrained: bool = True) -> Path:
    """Write the tiny SD 1.5 pipeline folder at `folder` (no-op if already complete): with
    the UNet `bioart build-base --family sd15` pretrained, or at its seeded start."""
    return tiny_sdxl.build_once(folder, lambda tmp: _write(tmp, pretrained))
