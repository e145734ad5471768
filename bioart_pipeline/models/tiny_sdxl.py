"""A tiny model with SDXL's architecture, built offline and deterministically.

It is the embedded default and the test model: the same loader, training and export
code runs on it as on real SDXL. Shapes follow diffusers' own SDXL test components,
adjusted so that 128 px images give 32x32 latents and the tokenizers are CLIP's real
ones (so prompts tokenize exactly as for SDXL).

The UNet and the VAE are pretrained (`bioart build-base`, on a procedurally drawn textbook
corpus) and ship in `textbook_tiny/`; the text encoders stay at their seeded initialisation,
so they are rebuilt here, and checked against the digest the pretraining recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from bioart_pipeline.models.builtin import TEXTBOOK_TINY
from bioart_pipeline.models.clip_tokenizer import (
    EOS,
    MODEL_MAX_LENGTH,
    VOCAB_SIZE,
    write_clip_tokenizer,
)

PRETRAINED_DIR = TEXTBOOK_TINY  # version and fingerprint: builtin.py
SEED = 0
TE1_HIDDEN = 32
TE2_HIDDEN = 64  # differs from TE1 so a swapped encoder fails loudly in tests
TE2_PROJECTION = 32
TIME_EMBED_DIM = 8
# 4-8 channels per GroupNorm group (SDXL has 10): with one channel per group, as 32 groups
# gave, the norm erases each channel's mean and with it the colour of every flat region.
NORM_GROUPS = 8

# SDXL base's scheduler_config.json (EulerDiscreteScheduler).
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
}


def _text_config(hidden: int, act: str) -> CLIPTextConfig:
    # Real CLIP token ids for bos/eos: pooling then finds the first <|endoftext|>.
    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MODEL_MAX_LENGTH,
        hidden_act=act,
        projection_dim=TE2_PROJECTION,
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )


def random_unet() -> UNet2DConditionModel:
    return seeded(_unet)


def random_vae() -> AutoencoderKL:
    return seeded(_vae)


# Like SDXL, the full-resolution level has no attention (attention over 32x32 tokens dominated
# the cost); the lower level and the mid block carry cross-attention.
UNET_SHAPE = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    attention_head_dim=(2, 4),  # diffusers' name for the number of heads
    transformer_layers_per_block=(1, 2),
    use_linear_projection=True,
    norm_num_groups=NORM_GROUPS,
)


def _unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        **UNET_SHAPE,
        cross_attention_dim=TE1_HIDDEN + TE2_HIDDEN,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TE2_PROJECTION,
    )


def _vae() -> AutoencoderKL:
    # Three blocks = two downsamplings: factor 4, so 128 px -> 32x32 latents.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=NORM_GROUPS,
        sample_size=128,
        scaling_factor=0.13025,  # SDXL's VAE value, so the same code paths run
    )


def seeded(factory):
    """`factory()` with torch seeded first: the same weights on every build."""
    torch.manual_seed(SEED)
    return factory()


def text_encoders() -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    """Both text encoders at their seeded initialisation (the base model keeps them frozen)."""
    return (seeded(lambda: CLIPTextModel(_text_config(TE1_HIDDEN, "quick_gelu"))),
            seeded(lambda: CLIPTextModelWithProjection(_text_config(TE2_HIDDEN, "gelu"))))


def weights_digest(*models: torch.nn.Module) -> str:
    """sha256 over every tensor's name and bytes: the same weights give the same digest
    whatever the file format."""
    digest = hashlib.sha256()
    for model in models:
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode() + b"\0")
            digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_sdxl_folder(folder: Path, models: dict[str, torch.nn.Module],
                      save: tuple[str, ...] | None = None) -> None:
    """A diffusers SDXL folder from its four models (unet, vae, text_encoder,
    text_encoder_2): CLIP's real tokenizers, SDXL base's scheduler, model_index.json, and the
    models named in `save` (all by default) as safetensors."""
    tokenizers = {
        "tokenizer": CLIPTokenizer.from_pretrained(
            write_clip_tokenizer(folder / "tokenizer", pad_token=EOS)),
        "tokenizer_2": CLIPTokenizer.from_pretrained(  # "!" pads, as in SDXL base
            write_clip_tokenizer(folder / "tokenizer_2", pad_token="!")),
    }
    for name in save if save is not None else tuple(models):
        models[name].save_pretrained(folder / name, safe_serialization=True)
    scheduler = EulerDiscreteScheduler(**SCHEDULER_CONFIG)
    scheduler.save_pretrained(folder / "scheduler")
    StableDiffusionXLPipeline(**models, **tokenizers, scheduler=scheduler,
                              force_zeros_for_empty_prompt=True).save_config(folder)


def _write(folder: Path, pretrained: bool) -> None:
    """UNet and VAE copied from the pretrained base, or at their seeded initialisation."""
    text_encoder, text_encoder_2 = text_encoders()
    models = {"unet": random_unet(), "vae": random_vae(), "text_encoder": text_encoder,
              "text_encoder_2": text_encoder_2}
    write_sdxl_folder(folder, models,
                      save=("text_encoder", "text_encoder_2") if pretrained else None)
    if pretrained:
        for name in ("unet", "vae"):
            shutil.copytree(PRETRAINED_DIR / name, folder / name)
        check_pretrained((text_encoder, text_encoder_2))


def pretrained_build(weights_dir: Path | None = None) -> dict:
    """The pretraining record (build.json): settings, figures and sha256 of each file."""
    path = (weights_dir or PRETRAINED_DIR) / "build.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the pretrained tiny base model is not in "
                                "this checkout; restore it with git, or rebuild it with "
                                "`make base-model` (about two CPU hours)")
    return json.loads(path.read_text())


def check_pretrained_files(weights_dir: Path | None = None) -> dict:
    """The committed weight files are the ones build.json lists; returns build.json."""
    from bioart_pipeline.common.files import sha256_file

    weights_dir = weights_dir or PRETRAINED_DIR
    build = pretrained_build(weights_dir)
    for name, expected in build["sha256"].items():
        if sha256_file(weights_dir / name) != expected:
            raise ValueError(f"{weights_dir / name} differs from its sha256 in build.json: "
                             "restore it with git, or rebuild with `make base-model`")
    return build


def check_pretrained(text_encoders: tuple[torch.nn.Module, ...],
                     weights_dir: Path | None = None) -> None:
    """The committed weights are the ones build.json lists, and the seeded text encoders are
    the ones the UNet was trained against (a torch that initialises differently would
    silently give a model that draws nothing)."""
    build = check_pretrained_files(weights_dir)
    if weights_digest(*text_encoders) != build["text_encoders_digest"]:
        raise ValueError(
            f"the text encoders built from seed {SEED} with torch {torch.__version__} differ "
            f"from those the base model was trained with (torch {build['torch']}): install "
            "that torch version, or rebuild the base model with `make base-model`")


def build_tiny_sdxl(folder: Path, pretrained: bool = True) -> Path:
    """Write the tiny SDXL pipeline folder at `folder` (no-op if already complete): the
    pretrained UNet and VAE, or (`pretrained=False`, the pretraining's starting point) all
    weights at their seeded initialisation."""
    return build_once(folder, lambda tmp: _write(tmp, pretrained))


def build_once(folder: Path, write: Callable[[Path], None]) -> Path:
    """Run `write` on a temporary folder beside `folder` and rename it into place (no-op if
    `folder` is already a pipeline folder), so a half-written folder is never mistaken for
    a model, and concurrent builders are safe (the loser discards its identical copy)."""
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists but is not a diffusers pipeline folder; remove it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.replace(tmp, folder)
    except OSError:
        if not (folder / "model_index.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
