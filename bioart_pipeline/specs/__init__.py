"""LoRA specs (one YAML file per LoRA = one partition) and the training presets per LoRA type."""

from bioart_pipeline.specs.presets import PRESETS, TrainingPreset
from bioart_pipeline.specs.spec import LoraSpec, SpecError, list_spec_files, load_spec

__all__ = ["PRESETS", "LoraSpec", "SpecError", "TrainingPreset", "list_spec_files", "load_spec"]
