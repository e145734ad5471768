"""Training defaults per LoRA type, from the field's practice (shared/domain.md, preset table).

A spec overrides any field under `training:`; everything else comes from here.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, get_type_hints

# Which denoiser layers get LoRA: attention only, or LoCon-style with the convolutions,
# feed-forward and projection layers too (the modules per family: models/families.py).
LORA_TARGETS = ("attention", "locon")

OPTIMIZERS = ("adamw", "adafactor", "adamw8bit")
# The frozen denoiser's storage: as loaded, or 4-bit NF4 (bitsandbytes, CUDA only): QLoRA, what
# fits Flux.1-dev's 12 B transformer on a 24 GB card.
BASE_QUANTIZATIONS = ("none", "nf4")


@dataclass(frozen=True)
class TrainingPreset:
    rank: int
    alpha: float
    learning_rate: float
    lr_scheduler: str
    warmup_steps: int
    batch_size: int
    grad_accumulation: int
    epochs: int
    noise_offset: float
    caption_dropout: float
    min_snr_gamma: float = 5.0
    lr_num_cycles: int = 3
    optimizer: str = "adamw"
    mixed_precision: str = "bf16"
    save_every_n_epochs: int = 5
    seed: int = 42
    train_text_encoder: bool = False
    gradient_checkpointing: bool = True
    max_grad_norm: float = 1.0
    lora_targets: str = "attention"
    # Validation images from the spec's prompts every N optimizer steps; 0 = at each checkpoint.
    sample_every_n_steps: int = 0
    # Pivotal tuning: the trigger becomes this many new tokens whose embeddings train in every
    # text encoder with the LoRA, and ship as an embedding file (0 = off; diffusers' advanced
    # SDXL script uses 2). embedding_learning_rate is theirs (cog-sdxl's ti_lr).
    pivotal_tokens: int = 0
    embedding_learning_rate: float = 3e-4
    base_quantization: str = "none"
    # Output preservation (ai-toolkit's "differential output preservation"): each step also
    # pulls the LoRA's prediction for the caption without the trigger towards the base
    # model's, with this weight, so the look comes with its trigger (0 = off; each step then
    # costs two more forward passes and one more backward). See training/loop.py.
    output_preservation: float = 0.0

    def __post_init__(self) -> None:
        if self.lora_targets not in LORA_TARGETS:
            raise ValueError(f"lora_targets must be one of {list(LORA_TARGETS)}, "
                             f"got {self.lora_targets!r}")
        if not 0 <= self.pivotal_tokens <= 16:
            raise ValueError(f"pivotal_tokens must be 0 (off) to 16, got {self.pivotal_tokens}")
        if self.output_preservation < 0:
            raise ValueError(f"output_preservation must be 0 (off) or more, "
                             f"got {self.output_preservation}")
        if self.base_quantization not in BASE_QUANTIZATIONS:
            raise ValueError(f"base_quantization must be one of {list(BASE_QUANTIZATIONS)}, "
                             f"got {self.base_quantization!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")

    def with_overrides(self, overrides: dict[str, Any]) -> TrainingPreset:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        hints = get_type_hints(TrainingPreset)
        return replace(self, **{k: _typed(k, v, hints[k]) for k, v in overrides.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _typed(name: str, value: Any, kind: type) -> Any:
    """A training option as its field's type. YAML reads `1e-4` (no dot) as a string, so a
    numeric string is accepted for a float; anything else of the wrong type is an error."""
    if kind is float and isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            return float(value)
    elif isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ValueError(f"training option {name!r} must be {kind.__name__}, got {value!r}")


PRESETS: dict[str, TrainingPreset] = {
    # The studio look: many subjects, one style; captions describe content only.
    "style": TrainingPreset(
        rank=32, alpha=32, learning_rate=1e-4, lr_scheduler="cosine_with_restarts",
        warmup_steps=50, batch_size=2, grad_accumulation=4, epochs=15,
        noise_offset=0.05, caption_dropout=0.1,
    ),
    # One structure from many angles: higher rank, alpha = rank / 2, gentler schedule.
    "subject": TrainingPreset(
        rank=64, alpha=32, learning_rate=1e-4, lr_scheduler="constant_with_warmup",
        warmup_steps=100, batch_size=1, grad_accumulation=8, epochs=20,
        noise_offset=0.03, caption_dropout=0.05,
    ),
    # Textures and fine detail.
    "detail": TrainingPreset(
        rank=32, alpha=16, learning_rate=1e-4, lr_scheduler="constant_with_warmup",
        warmup_steps=100, batch_size=2, grad_accumulation=4, epochs=15,
        noise_offset=0.0, caption_dropout=0.05,
    ),
    # A small colour-palette LoRA.
    "palette": TrainingPreset(
        rank=8, alpha=8, learning_rate=2e-4, lr_scheduler="cosine_with_restarts",
        warmup_steps=50, batch_size=2, grad_accumulation=4, epochs=10,
        noise_offset=0.1, caption_dropout=0.1,
    ),
}
