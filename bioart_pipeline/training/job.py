"""A training job: everything the training process needs, as one JSON file.

The orchestrator writes it; the training entrypoint (local subprocess or remote worker) reads it.
Paths inside are absolute on the machine that runs the job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioart_pipeline.common.files import atomic_write_json, read_json, sha256_json
from bioart_pipeline.models.profiles import ModelProfile
from bioart_pipeline.specs.presets import TrainingPreset

TRAINING_CODE_VERSION = 2  # bump when the loop changes what a checkpoint contains


@dataclass(frozen=True)
class TrainingImage:
    key: str  # content key of the preprocessed file
    file: str
    caption: str
    role: str  # "train" or "regularization"
    bucket: tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class TrainingJob:
    lora: str
    profile: ModelProfile
    preset: TrainingPreset
    images: tuple[TrainingImage, ...]
    models_dir: str
    latent_cache_dir: str
    export_metadata: dict[str, str] = field(default_factory=dict)
    validation_prompts: tuple[str, ...] = ()
    sample_steps: int = 20  # sampling steps of the validation images
    wandb_mode: str = "offline"
    wandb_project: str = "bioart_pipeline"

    def cache_key(self, base_fingerprint: str) -> str:
        """Identical inputs (images, captions, config, base weights, code) give the same key."""
        payload = dataclasses.asdict(self)
        for volatile in ("models_dir", "latent_cache_dir", "wandb_mode", "wandb_project"):
            payload.pop(volatile)
        payload["images"] = [(i.key, i.caption, i.role) for i in self.images]
        payload["base"] = base_fingerprint
        payload["code"] = TRAINING_CODE_VERSION
        return sha256_json(payload)[:16]

    def save(self, path: Path) -> Path:
        return atomic_write_json(path, dataclasses.asdict(self))

    @classmethod
    def load(cls, path: Path) -> TrainingJob:
        raw: dict[str, Any] = read_json(path)
        return cls(
            **{**raw,
               "profile": ModelProfile(**raw["profile"]),
               "preset": TrainingPreset(**raw["preset"]),
               "images": tuple(TrainingImage(**{**i, "bucket": tuple(i["bucket"])})
                               for i in raw["images"]),
               "validation_prompts": tuple(raw.get("validation_prompts", ())),
               "export_metadata": dict(raw.get("export_metadata", {}))},
        )
