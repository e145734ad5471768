"""Model profiles: which base model to train on, and how to load it.

A profile names its family (`architecture`: sd15, sdxl or flux, see families.py); the tiny built-in
models and the real bases of a family share one loader, so everything downstream (training,
export, evaluation) runs the same code on both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bioart_pipeline.models.builtin import (
    MODELS_DIR,
    TINY_FLUX_ORIGIN,
    TINY_FLUX_VERSION,
    TINY_ORIGIN,
    TINY_SD15_ORIGIN,
    TINY_SD15_VERSION,
    TINY_VERSION,
    committed_files,
)
from bioart_pipeline.models.families import Family, get_family

if TYPE_CHECKING:  # the model stack loads with a model, not with the definitions
    import torch
    from diffusers import DiffusionPipeline

TINY_SOURCE = f"builtin:{TINY_VERSION}"
TINY_SD15_SOURCE = f"builtin:{TINY_SD15_VERSION}"
TINY_FLUX_SOURCE = f"builtin:{TINY_FLUX_VERSION}"
# Each built-in model's builder (module, function): writes its diffusers folder offline, once.
BUILTIN_BUILDERS = {TINY_SOURCE: ("tiny_sdxl", "build_tiny_sdxl"),
                    TINY_SD15_SOURCE: ("tiny_sd15", "build_tiny_sd15"),
                    TINY_FLUX_SOURCE: ("tiny_flux", "build_tiny_flux")}
SDXL_BASE_ID = "stabilityai/stable-diffusion-xl-base-1.0"
# The community mirror of runwayml/stable-diffusion-v1-5 (withdrawn from the hub in 2024).
SD15_BASE_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
FLUX_BASE_ID = "black-forest-labs/FLUX.1-dev"  # gated on the hub: accept its licence, HF_TOKEN
# Single-file formats that are unpickled on load: arbitrary code execution.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    name: str
    architecture: str  # the family: "sd15", "sdxl" or "flux" (families.py)
    # "builtin:<version>", a hub id, a local diffusers folder or a single .safetensors file
    source: str
    resolution: int
    bucket_step: int
    min_side: int  # smallest accepted image side of the source portfolio
    base_model_license: str
    base_model_version: str  # kohya ss_base_model_version (A1111 needs the sdxl_ prefix)
    # For a single-file source: a local diffusers folder holding the pipeline configs,
    # since diffusers otherwise fetches them from the hub.
    single_file_config: str | None = None
    # Where the base weights come from, for model cards ("" = as the source names them).
    base_model_origin: str = ""
    # For a hub id: the commit (or tag) to download, so a retrain gets the same weights.
    revision: str | None = None
    # SDXL micro-conditioning with each image's source size and crop offset, as SDXL was
    # trained; False for a base trained only at original size = target size, no crop.
    source_size_conditioning: bool = True
    # The XY rule's defaults this base needs (evaluation/scoring.py Thresholds), each with the
    # measurements that set it; a spec's own thresholds still go on top.
    rule_defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @property
    def pinned_source(self) -> str:
        """The source with its hub revision, as provenance records it."""
        return f"{self.source}@{self.revision}" if self.revision else self.source

    @property
    def training_content_reference(self) -> str:
        """Where the base model's own training content is documented, for the public
        summary: the built-in base's origin, a hub model's card; never a local path."""
        if self.base_model_origin:
            return self.base_model_origin
        if is_local_source(self.source):
            return "a local copy of the base model: see its provider's documentation"
        return f"https://huggingface.co/{self.source}"

    @property
    def is_builtin(self) -> bool:
        return self.source.startswith("builtin:")

    @property
    def family(self) -> Family:
        return get_family(self.architecture)


def _tiny(name: str, architecture: str, source: str, version: str, origin: str,
          rule_defaults: Mapping[str, float] | None = None) -> ModelProfile:
    """A built-in tiny model: 128 px, the sample portfolio's filters (it stands in for the real
    family on the same images), CC0. Drawn at 128 px: original size = target, no crop."""
    return ModelProfile(name=name, architecture=architecture, source=source, resolution=128,
                        bucket_step=16,  # even latent sides: Flux packs 2x2 latent patches
                        min_side=512, source_size_conditioning=False,
                        base_model_license="CC0-1.0", base_model_version=version,
                        base_model_origin=origin, rule_defaults=rule_defaults or {})


# tiny-flux's text encoders are seeded, never trained (its BASE_MODEL_FLUX.md): a new word
# barely moves their output, so no transformer-only LoRA on this base can keep its look to its
# trigger. Measured on the demo Flux style LoRA (rank 16, 10 epochs, both checkpoints, weights
# 0.6 and 1.0), trigger-less change / trigger change: 1.19-1.39 as trained; 1.33-1.42 without
# caption dropout; 1.05-1.23 with output preservation 1.0 (the look halves with and without
# the trigger: style gain 0.48-0.92, was 0.87-2.32); 0.96-1.03 with 3.0, where the LoRA no
# longer learns the look (style gain 0.12-0.41). The SDXL and SD 1.5 tiny bases, whose text
# encoders were trained, read 0.65-0.82 and 0.37-0.65. 1.5 sits above what this base allows
# and still refuses a LoRA that paints over trigger-less prompts half as much again. A real
# Flux.1's T5 is trained: the `flux` profile keeps the default 1.0.
TINY_FLUX_RULE = {"max_bleeding_ratio": 1.5}


_PROFILES = {
    "tiny": _tiny("tiny", "sdxl", TINY_SOURCE, "sdxl_base_v1-0", TINY_ORIGIN),
    "tiny-sd15": _tiny("tiny-sd15", "sd15", TINY_SD15_SOURCE, "sd_v1", TINY_SD15_ORIGIN),
    "sd15": ModelProfile(
        name="sd15",
        architecture="sd15",
        source=SD15_BASE_ID,
        resolution=512,
        bucket_step=64,
        min_side=384,
        source_size_conditioning=False,  # SD 1.5 has no size conditioning
        base_model_license="creativeml-openrail-m",
        base_model_version="sd_v1",  # kohya's value: A1111 treats the LoRA as SD1
    ),
    "tiny-flux": _tiny("tiny-flux", "flux", TINY_FLUX_SOURCE, "flux1", TINY_FLUX_ORIGIN,
                       TINY_FLUX_RULE),
    "flux": ModelProfile(
        name="flux",
        architecture="flux",
        source=FLUX_BASE_ID,
        resolution=1024,
        bucket_step=64,
        min_side=512,
        source_size_conditioning=False,  # Flux has no size conditioning
        base_model_license="LicenseRef-FLUX.1-dev-Non-Commercial",
        base_model_version="flux1",  # kohya's value for Flux.1 LoRAs
    ),
    "sdxl": ModelProfile(
        name="sdxl",
        architecture="sdxl",
        source=SDXL_BASE_ID,
        resolution=1024,
        bucket_step=64,
        min_side=512,
        base_model_license="openrail++",
        base_model_version="sdxl_base_v1-0",
    ),
}


def get_profile(name: str, source: str | None = None, single_file_config: str | None = None,
                revision: str | None = None) -> ModelProfile:
    """A built-in profile by name; `source` overrides a real profile's weights location,
    `single_file_config` names the configs folder for a single-file source, and `revision`
    pins a hub id to a commit."""
    key = name.strip().lower()
    if key not in _PROFILES:
        raise ValueError(f"unknown model profile {name!r}; known profiles: {', '.join(_PROFILES)}")
    profile = _PROFILES[key]
    if ((source is None or source == profile.source) and single_file_config is None
            and revision is None):
        return profile
    if profile.is_builtin:
        raise ValueError(f"profile {key!r} is built in; its source cannot be overridden")
    source = str(source or profile.source)
    if revision is not None and is_local_source(source):
        raise ValueError(f"base_model_revision pins a hub id; {source!r} is a local path")
    return dataclasses.replace(profile, source=source, single_file_config=single_file_config,
                               revision=revision)


def _check_not_pickle(source: str) -> None:
    if source.lower().endswith(PICKLE_SUFFIXES):
        raise ValueError(
            f"refusing to load {source!r}: pickled checkpoints (.ckpt/.pt/.bin) can run "
            "arbitrary code; convert it to .safetensors first"
        )


def is_local_source(source: str) -> bool:
    """A path on this machine rather than a hub id: an existing path, or one written as a path
    (absolute, ~ or . relative, or a .safetensors file)."""
    path = Path(source).expanduser()
    return (path.exists() or path.is_absolute() or source.startswith((".", "~"))
            or source.endswith(".safetensors"))


def _local_path(source: str) -> Path | None:
    """The source as a local path, None for a hub id; missing explicit paths raise."""
    if not is_local_source(source):
        return None
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model source {source!r} does not exist")
    return path


def builtin_folder(models_dir: Path, source: str = TINY_SOURCE) -> Path:
    """Where a built-in model is cached; the folder name carries its version."""
    return Path(models_dir) / source.removeprefix("builtin:")


def _build_builtin(source: str, models_dir: Path) -> Path:
    if source not in BUILTIN_BUILDERS:
        raise ValueError(f"unknown built-in model {source!r}; known: "
                         f"{', '.join(BUILTIN_BUILDERS)}")
    module, builder = BUILTIN_BUILDERS[source]
    build = getattr(importlib.import_module(f"bioart_pipeline.models.{module}"), builder)
    return build(builtin_folder(models_dir, source))  # a no-op once built


def load_pipeline(
    profile: ModelProfile, models_dir: Path, dtype: torch.dtype | None = None,
    vae_dtype: torch.dtype | None = None, quantization: str = "none",
) -> DiffusionPipeline:
    """Load the profile's pipeline (its family's class) in `dtype` (the VAE in `vae_dtype` if
    given; the denoiser in 4-bit NF4 with `quantization="nf4"`, computing in `dtype`);
    weights only ever from safetensors. Per-component progress bars are off: they flood
    Dagster's logs. `dtype` defaults to float32."""
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    dtype = dtype or torch.float32
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    pipe = _load(profile, models_dir, dtype if vae_dtype in (None, dtype)
                 else {"default": dtype, "vae": vae_dtype},
                 _quantization_options(quantization, profile.family, dtype))
    if vae_dtype is not None:
        cast_quietly(pipe.vae, vae_dtype)  # a single file loads in one dtype
    pipe.set_progress_bar_config(disable=True)
    return pipe


def cast_quietly(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """`module.to(dtype)` without diffusers' warning, which lists no module for the VAE."""
    from diffusers.utils import logging as diffusers_logging

    if module.dtype == dtype:
        return
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    module.to(dtype=dtype)
    diffusers_logging.set_verbosity(verbosity)


def _quantization_options(quantization: str, family: Family, dtype: torch.dtype) -> dict:
    """diffusers' on-load quantization of the denoiser: NF4 needs a CUDA GPU and bitsandbytes
    (diffusers quantizes on the GPU only); refused here with what to do instead."""
    if quantization == "none":
        return {}
    if quantization != "nf4":
        raise ValueError(f"unknown base_quantization {quantization!r}: use none or nf4")
    import torch

    if not torch.cuda.is_available():
        raise ValueError("base_quantization nf4 needs a CUDA GPU (bitsandbytes 4-bit; diffusers "
                         "quantizes on the GPU only) and this machine has none: set "
                         "base_quantization: none, or train with the GPU placement")
    try:
        import bitsandbytes  # noqa: F401 - only checks that it is installed
    except ImportError as exc:
        raise ValueError("base_quantization nf4 needs bitsandbytes: pip install "
                         "'bioart_pipeline[gpu]'") from exc
    from diffusers import BitsAndBytesConfig
    from diffusers.quantizers import PipelineQuantizationConfig

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_compute_dtype=dtype)
    return {"quantization_config": PipelineQuantizationConfig(
        quant_mapping={family.denoiser: nf4})}


def _load(profile: ModelProfile, models_dir: Path, dtype: torch.dtype | dict,
          quantization: dict) -> DiffusionPipeline:
    family = profile.family
    pipeline, options = family.pipeline, {**family.load_options, **quantization}
    source = profile.source
    if profile.is_builtin:
        return pipeline.from_pretrained(_build_builtin(source, models_dir), dtype=dtype,
                                        use_safetensors=True, **options)
    _check_not_pickle(source)
    path = _local_path(source)
    if path is not None and path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise ValueError(f"single-file checkpoints must be .safetensors, got {source!r}")
        return pipeline.from_single_file(
            str(path), dtype=dtype["default"] if isinstance(dtype, dict) else dtype,
            config=profile.single_file_config, **options)
    # A local diffusers folder or a hub id: use_safetensors refuses pickled weights.
    if path is not None:
        return pipeline.from_pretrained(str(path), dtype=dtype, use_safetensors=True, **options)
    try:
        return pipeline.from_pretrained(source, dtype=dtype, use_safetensors=True,
                                        revision=profile.revision, **options)
    except OSError as exc:  # huggingface_hub's not-found and offline errors are OSErrors
        raise OSError(_hub_advice(source, profile.revision, exc)) from exc


_COMMIT = re.compile(r"[0-9a-f]{40}")


def pin_revision(profile: ModelProfile) -> ModelProfile:
    """The profile with a hub id's revision (a branch, a tag or nothing: main) resolved to
    its commit hash, so the fingerprint, the training config, the audit and the latent cache
    name the exact weights and every later load gets them. Other sources are unchanged."""
    if profile.is_builtin or is_local_source(profile.source):
        return profile
    return dataclasses.replace(profile, revision=hub_commit(profile.source, profile.revision))


def hub_commit(repo_id: str, revision: str | None) -> str:
    """The commit `revision` of `repo_id` points at: asked of the hub, or read from the local
    hub cache when offline (or when the hub cannot be reached)."""
    if revision and _COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import HfApi, try_to_load_from_cache

    problem: Exception | None = None
    if not _hub_offline():
        try:
            return HfApi().model_info(repo_id, revision=revision).sha
        except Exception as exc:  # noqa: BLE001 - any hub failure: try the cache, then explain
            problem = exc
    cached = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit>/model_index.json
    raise OSError(_hub_advice(repo_id, revision, problem or FileNotFoundError(
        "not in the local hub cache")))


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_advice(source: str, revision: str | None, exc: Exception) -> str:
    """What to do when a hub model is neither cached nor downloadable."""
    offline = _hub_offline()
    pinned = f" --revision {revision}" if revision else ""
    return (f"cannot load {source!r}{f' at revision {revision}' if revision else ''} from the "
            f"Hugging Face hub cache{' (HF_HUB_OFFLINE is set)' if offline else ''}: {exc}. "
            f"Run once where the hub is reachable (without HF_HUB_OFFLINE; gated models need "
            f"HF_TOKEN), or download it with `huggingface-cli download {source}{pinned}` and "
            "set base_model to that folder.")


def _sha256_files(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _stat_key(files: list[Path]) -> str:
    """Size and mtime of each file: cheap change detection for large weights."""
    parts = [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def profile_fingerprint(profile: ModelProfile, models_dir: Path) -> str:
    """A stable string identifying the exact base weights (a cache key for latents).

    Built-in: its version plus a sha256 over the committed weights it is built from and their
    build.json (cached latents depend on the VAE, not only the UNet), so the Dagster process
    names it without building it. Others: the source, plus size+mtime of the local weight
    files.
    """
    if profile.is_builtin:
        version = profile.source.removeprefix("builtin:")
        return f"{profile.source}@sha256:{_sha256_files(committed_files(version), MODELS_DIR)}"
    path = Path(profile.source).expanduser()
    if path.is_file():
        return f"{profile.source}@{_stat_key([path])}"
    if path.is_dir():
        return f"{profile.source}@{_stat_key(sorted(path.glob('*/*.safetensors')))}"
    return profile.pinned_source


def vae_scale_factor(pipe: DiffusionPipeline) -> int:
    """Pixels per latent cell (8 for SD 1.5 and SDXL, 4 for the tiny models)."""
    return 2 ** (len(pipe.vae.config.block_out_channels) - 1)
