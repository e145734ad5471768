"""A training job: everything the training process needs, as one JSON file.

The orchestrator writes it; the compute entrypoint (local subprocess or remote worker) reads
it. Paths inside are absolute on the machine that runs the job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bioart_pipeline.common.files import sha256_bytes, sha256_json
from bioart_pipeline.compute.jobs import load_job, save_job
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.models.profiles import ModelProfile, is_local_source, profile_fingerprint
from bioart_pipeline.specs.presets import TrainingPreset

# Bump when the loop changes what a checkpoint contains. 3: real source sizes and crop offsets
# in SDXL's micro-conditioning.
TRAINING_CODE_VERSION = 3
REPORT = "report.json"  # written last: a run folder without it is unfinished


@dataclass(frozen=True)
class TrainingImage:
    key: str  # content key of the preprocessed file
    file: str
    caption: str
    role: str  # "train" or "regularization"
    bucket: tuple[int, int]  # (width, height)
    # SDXL micro-conditioning: the source's (width, height) before resizing (None: the
    # bucket's, for images made at that size), and the crop's (left, top) in the resized image
    original_size: tuple[int, int] | None = None
    crop_left_top: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class TrainingJob:
    kind: ClassVar[str] = "training"
    done_file: ClassVar[str] = REPORT

    lora: str
    profile: ModelProfile
    preset: TrainingPreset
    images: tuple[TrainingImage, ...]
    models_dir: str
    latent_cache_dir: str
    export_metadata: dict[str, str] = field(default_factory=dict)
    trigger: str = ""  # the word pivotal tuning turns into new tokens
    validation_prompts: tuple[str, ...] = ()
    sample_steps: int = 20  # sampling steps of the validation images
    wandb_mode: str = "offline"
    wandb_project: str = "bioart_pipeline"
    placement: Placement = Placement()

    def cache_key(self, base_fingerprint: str) -> str:
        """Identical inputs (images, captions, config, base weights, code) give the same key;
        `base_fingerprint` names the exact base weights (a hub id with its commit)."""
        payload = dataclasses.asdict(self)
        for volatile in ("models_dir", "latent_cache_dir", "wandb_mode", "wandb_project"):
            payload.pop(volatile)
        # What is written about the weights, not the weights: the release writes the spec's
        # current metadata, so a new author, licence or prompt re-exports without retraining.
        for about in ("export_metadata", "validation_prompts", "sample_steps"):
            payload.pop(about)
        # the trigger then is only in the captions
        if not (self.preset.pivotal_tokens or self.preset.output_preservation):
            payload.pop("trigger")
        payload["images"] = [(i.key, i.caption, i.role) for i in self.images]
        payload["base"] = base_fingerprint
        payload["code"] = TRAINING_CODE_VERSION
        return sha256_json(payload)[:16]

    def save(self, path: Path) -> Path:
        return save_job(self, path)

    @classmethod
    def load(cls, path: Path) -> TrainingJob:
        job = load_job(path)
        if not isinstance(job, cls):
            raise ValueError(f"{path} is a {job.kind} job, not a training job")
        return job

    def latent_folder(self, base_fingerprint: str) -> Path:
        """Latents depend on the VAE weights: one folder per base model fingerprint."""
        return Path(self.latent_cache_dir) / sha256_bytes(base_fingerprint.encode())[:16]

    def latents_portable(self) -> bool:
        """Whether a worker computes the same base fingerprint, so it can reuse the cached
        latents: yes for the built-in model and hub ids, not for a local weights path."""
        return self.profile.is_builtin or not is_local_source(self.profile.source)

    def shipment(self) -> tuple[TrainingJob, dict[str, Path]]:
        """The cached latents where the worker can reuse them, else the images."""
        folder = self.latent_folder(profile_fingerprint(self.profile, Path(self.models_dir)))
        latents = {i.key: folder / f"{i.key}.safetensors" for i in self.images}
        files = ({f"latents/{folder.name}/{k}.safetensors": p for k, p in latents.items()}
                 if self.latents_portable() and all(p.exists() for p in latents.values())
                 else {f"images/{i.key}.png": Path(i.file) for i in self.images})
        images = tuple(dataclasses.replace(i, file=f"images/{i.key}.png") for i in self.images)
        return dataclasses.replace(self, images=images, models_dir="",
                                   latent_cache_dir="latents"), files

    def unpacked(self, workdir: Path, models_dir: Path) -> TrainingJob:
        images = tuple(dataclasses.replace(i, file=str(workdir / i.file)) for i in self.images)
        return dataclasses.replace(self, images=images, models_dir=str(models_dir),
                                   latent_cache_dir=str(workdir / self.latent_cache_dir))
