"""The XY plot's rule as a spec states it: the bar each measure must clear for a cell to be
usable. What each measure is, and how the defaults were calibrated, is in
evaluation/scoring.py's docstring; a spec's `evaluation.thresholds` overrides them."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Thresholds:
    min_style_gain: float = 0.0
    max_memorization: float = 0.95
    max_memorization_gain: float = 0.3
    min_diversity_ratio: float = 0.5
    max_bleeding_ratio: float = 1.0
    min_clip_score_ratio: float = 0.9
    min_structure: float = 0.7

    @classmethod
    def for_type(cls, lora_type: str, **overrides: float) -> Thresholds:
        """The default rule for a LoRA type, with a spec's overrides on top."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown threshold(s) {unknown}; known: {known}")
        defaults = {"min_structure": SUBJECT_MIN_STRUCTURE} if lora_type == "subject" else {}
        return cls(**{**defaults, **{k: float(v) for k, v in overrides.items()}})


# A subject LoRA redraws its subject by design (evaluation/scoring.py's docstring).
SUBJECT_MIN_STRUCTURE = 0.5
