"""Guards that stop or warn with a diagnosis instead of a stack trace or a silent slowdown."""

from __future__ import annotations

import torch

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.specs.presets import TrainingPreset

GIB = 1024 ** 3
# Past this share of the card, Windows drivers start spilling into system memory
# ("sysmem fallback") and a step runs tens of times slower without any error.
MEMORY_WARNING_SHARE = 0.9


class TrainingStopped(Diagnosis):
    """The run cannot go on; the message says why and which settings to change."""


class TrainingDiverged(TrainingStopped):
    """Loss became NaN or infinite."""


class OutOfGpuMemory(TrainingStopped):
    """CUDA ran out of memory."""


def check_finite(loss: torch.Tensor, step: int, epoch: int, preset: TrainingPreset,
                 precision: str) -> None:
    if torch.isfinite(loss):
        return
    lr = preset.learning_rate
    raise TrainingDiverged(
        f"loss became {loss.item()} at step {step} (epoch {epoch}). Likely cause: the learning "
        f"rate {lr:g} is too high for this data, or half-precision overflow "
        f"(mixed precision: {precision}). Fix: lower learning_rate (try {lr / 10:g}), use bf16 "
        "instead of fp16, and keep the VAE in fp32 (or use the fp16-fix SDXL VAE).")


def memory_warning(used_bytes: int, total_bytes: int, preset: TrainingPreset) -> str | None:
    """A warning when peak GPU memory nears (or passes) the card's capacity, else None."""
    share = used_bytes / total_bytes
    if share < MEMORY_WARNING_SHARE:
        return None
    state = ("is past the card's memory: the driver is spilling into system memory"
             if share > 1 else "is close to the card's capacity")
    return (f"GPU memory {used_bytes / GIB:.1f} of {total_bytes / GIB:.1f} GiB ({share:.0%}) "
            f"{state}. Where the driver falls back to system memory (Windows default), "
            f"steps become tens of times slower without an error. To use less: "
            f"{memory_advice(preset)}.")


def out_of_memory_message(preset: TrainingPreset, step: int, total_bytes: int | None) -> str:
    card = f" on a {total_bytes / GIB:.0f} GiB card" if total_bytes else ""
    return f"CUDA ran out of memory at step {step}{card}. To fit: {memory_advice(preset)}."


def memory_advice(preset: TrainingPreset) -> str:
    """The settings that lower memory use, in the order worth trying, for this preset."""
    advice = []
    if not preset.gradient_checkpointing:
        advice.append("gradient_checkpointing: true")
    if preset.mixed_precision == "no":
        advice.append("mixed_precision: bf16 (fp16 on cards without bf16)")
    if preset.batch_size > 1:
        advice.append(f"batch_size: {preset.batch_size // 2} with grad_accumulation: "
                      f"{preset.grad_accumulation * 2} (same effective batch)")
    if preset.optimizer == "adamw":
        advice.append("optimizer: adamw8bit (needs bitsandbytes) or adafactor")
    if preset.train_text_encoder:
        advice.append("train_text_encoder: false")
    advice.append(f"a lower rank (now {preset.rank})")
    advice.append("a smaller preprocessing max_pixels (smaller buckets)")
    return "; ".join(advice)
