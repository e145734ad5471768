"""A LoRA spec: one YAML file in data/loras/ describes one LoRA and is one Dagster partition."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bioart_pipeline.models.profiles import ModelProfile, get_profile
from bioart_pipeline.specs.presets import PRESETS, TrainingPreset
from bioart_pipeline.specs.thresholds import Thresholds

LORA_TYPES = tuple(PRESETS)
INTENDED_USES = ("commercial", "internal", "non-commercial")
BACKGROUNDS = ("#FFFFFF", "#FF00FF")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_EMBEDDING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class SpecError(ValueError):
    """A spec file that cannot be used, with the file and the field at fault."""


@dataclass(frozen=True)
class EvaluationOptions:
    weights: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0, 1.2)
    seeds: tuple[int, ...] = (1, 2)
    steps: int = 20
    guidance_scale: float = 5.0  # a spec without one gets its model family's default
    # Flux only: classifier-free guidance beside the distilled one (1: off)
    true_cfg_scale: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class LoraSpec:
    name: str
    type: str
    project: str
    subject: str
    trigger: str
    profile: str
    intended_use: str
    portfolio: tuple[str, ...]
    validation_prompts: tuple[str, ...]
    author: str
    release_license: str
    base_model: str | None = None
    # For a single-file base_model: a local diffusers folder with the pipeline's configs
    # (without it diffusers fetches them from the hub once).
    base_model_config: str | None = None
    # For a hub-id base_model: the commit to download (recorded in the release)
    base_model_revision: str | None = None
    regularization: tuple[str, ...] = ()
    # Tags for generated captions (see captioning/assembly.py for their order).
    subject_tags: tuple[str, ...] = ()
    style_tags: tuple[str, ...] = ()
    background: str = "#FFFFFF"
    license_policy: str = "exclude"
    # Overrides of the data filters: min_side, blur_threshold, max_pixels (defaults: the model
    # profile's min_side and PreprocessOptions) and near_duplicate_bits (of 256, default
    # NEAR_DUPLICATE_BITS; the license manifest groups duplicates by it).
    preprocessing: dict[str, float] = field(default_factory=dict)
    training: TrainingPreset = field(default_factory=lambda: PRESETS["style"])
    evaluation: EvaluationOptions = field(default_factory=EvaluationOptions)
    source_file: str = ""

    @property
    def model_profile(self) -> ModelProfile:
        return get_profile(self.profile, self.base_model, self.base_model_config,
                           self.base_model_revision)

    def release_stem(self, epoch: int | None = None) -> str:
        """`{project}_{subject}_{rank}_{epoch}`: the studio's release file naming."""
        stem = f"{self.project}_{self.subject}_{self.training.rank}"
        return f"{stem}_{epoch}" if epoch is not None else stem


def list_spec_files(specs_dir: Path) -> list[Path]:
    return sorted(p for p in specs_dir.glob("*.yaml") if not p.name.startswith("."))


def load_spec(path: Path) -> LoraSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping")
    try:
        return _parse(path, raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: {exc}") from exc


def _parse(path: Path, raw: dict[str, Any]) -> LoraSpec:
    name = path.stem
    if not _NAME.match(name):
        raise ValueError(f"file name {name!r} must be lowercase letters, digits, '_' or '-'")
    lora_type = _choice(raw, "type", LORA_TYPES)
    preset = PRESETS[lora_type].with_overrides(raw.get("training") or {})
    spec = LoraSpec(
        name=name,
        type=lora_type,
        project=_required(raw, "project"),
        subject=_required(raw, "subject"),
        trigger=_required(raw, "trigger"),
        profile=str(raw.get("profile", "tiny")),
        intended_use=_choice(raw, "intended_use", INTENDED_USES),
        portfolio=_paths(raw, "portfolio", required=True),
        regularization=_paths(raw, "regularization", required=False),
        validation_prompts=tuple(str(p) for p in _required(raw, "validation_prompts")),
        author=_required(raw, "author"),
        release_license=_required(raw, "release_license"),
        base_model=raw.get("base_model"),
        base_model_config=raw.get("base_model_config"),
        base_model_revision=(None if raw.get("base_model_revision") is None
                             else str(raw["base_model_revision"])),
        subject_tags=_strings(raw.get("captions") or {}, "subject_tags"),
        style_tags=_strings(raw.get("captions") or {}, "style_tags"),
        background=str(raw.get("background", "#FFFFFF")).upper(),
        license_policy=_choice(raw, "license_policy", ("exclude", "fail"), default="exclude"),
        preprocessing=_preprocessing(raw.get("preprocessing") or {}),
        training=preset,
        source_file=path.name,
    )
    family = spec.model_profile.family  # an unknown profile fails here, not mid-pipeline
    family.check_preset(preset)
    spec = dataclasses.replace(spec, evaluation=_evaluation(raw.get("evaluation") or {},
                                                            family.guidance_scale, spec.type,
                                                            spec.model_profile.rule_defaults))
    family.check_true_cfg(spec.evaluation.true_cfg_scale)
    if spec.background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {spec.background!r}")
    if spec.training.pivotal_tokens:
        check_trigger(spec.trigger)
    if not any(spec.trigger not in prompt for prompt in spec.validation_prompts):
        raise ValueError("validation_prompts need one prompt without the trigger word "
                         "(it shows whether the style bleeds into every image)")
    return spec


def check_trigger(trigger: str) -> None:
    """A pivotal-tuning trigger names the release's embedding file and what prompts write."""
    if not _EMBEDDING_NAME.match(trigger):
        raise ValueError(f"pivotal tuning names its embedding after the trigger, which must be "
                         f"one word of letters, digits, '_' or '-'; got {trigger!r}")


def _strings(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"captions.{key} must be a list of strings")
    return tuple(str(v) for v in value)


def _required(raw: dict[str, Any], key: str) -> Any:
    value = raw.get(key)
    if value in (None, "", []):
        raise ValueError(f"missing required field {key!r}")
    return value


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None = None
            ) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ValueError(f"{key} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _paths(raw: dict[str, Any], key: str, required: bool) -> tuple[str, ...]:
    value = _required(raw, key) if required else raw.get(key) or []
    return tuple(str(v) for v in ([value] if isinstance(value, str) else value))


PREPROCESSING_KEYS = ("min_side", "blur_threshold", "near_duplicate_bits", "max_pixels")


def _preprocessing(raw: dict[str, Any]) -> dict[str, float]:
    unknown = sorted(set(raw) - set(PREPROCESSING_KEYS))
    if unknown:
        raise ValueError(f"unknown preprocessing option(s) {unknown}; known: {PREPROCESSING_KEYS}")
    return {key: float(value) if key == "blur_threshold" else int(value)
            for key, value in raw.items()}


def _evaluation(raw: dict[str, Any], guidance_scale: float, lora_type: str,
                rule_defaults: Mapping[str, float]) -> EvaluationOptions:
    defaults = EvaluationOptions(guidance_scale=guidance_scale)
    return EvaluationOptions(
        weights=tuple(float(w) for w in raw.get("weights", defaults.weights)),
        seeds=tuple(int(s) for s in raw.get("seeds", defaults.seeds)),
        steps=int(raw.get("steps", defaults.steps)),
        guidance_scale=float(raw.get("guidance_scale", defaults.guidance_scale)),
        true_cfg_scale=float(raw.get("true_cfg_scale", defaults.true_cfg_scale)),
        thresholds=Thresholds.for_type(lora_type,
                                       **{**rule_defaults, **(raw.get("thresholds") or {})}),
    )
