"""LoRA spec files: presets by type, overrides, and clear errors for bad specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bioart_pipeline.specs import SpecError, list_spec_files, load_spec
from tests.conftest import SAMPLE_DATA, quick_spec


def _write(tmp_path: Path, spec: dict, name: str = "my_lora") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sample_specs_load_with_their_presets() -> None:
    specs = {p.stem: load_spec(p) for p in list_spec_files(SAMPLE_DATA / "loras")}
    assert set(specs) == {"cellula_style", "cellula_mitochondria", "cellula_mitochondria_sd15",
                          "cellula_style_flux"}
    style, subject = specs["cellula_style"], specs["cellula_mitochondria"]
    assert style.training.alpha == style.training.rank
    assert subject.training.alpha == subject.training.rank / 2
    assert subject.training.lr_scheduler == "constant_with_warmup"
    assert style.release_stem(10) == "cellula_cellstyle_32_10"
    families = {name: spec.model_profile.architecture for name, spec in specs.items()}
    assert sorted(families.values()) == ["flux", "sd15", "sdxl", "sdxl"]
    # Released side by side in one models/loras folder, the files keep distinct names.
    stems = {spec.release_stem(spec.training.epochs) for spec in specs.values()}
    assert len(stems) == len(specs)


def test_overrides_apply(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, quick_spec(preprocessing={"blur_threshold": 5,
                                                                "min_side": 256})))
    assert spec.training.epochs == 2
    assert spec.preprocessing == {"blur_threshold": 5.0, "min_side": 256}


@pytest.mark.parametrize(("change", "message"), [
    ({"type": "portrait"}, "type must be one of"),
    ({"intended_use": "whatever"}, "intended_use must be one of"),
    ({"training": {"rnak": 4}}, "unknown training option"),
    ({"preprocessing": {"blur": 1}}, "unknown preprocessing option"),
    ({"trigger": ""}, "missing required field 'trigger'"),
    ({"background": "#123456"}, "background must be one of"),
    ({"validation_prompts": ["cellulastyle, a cell"]}, "without the trigger word"),
    ({"profile": "sd3"}, "unknown model profile"),
    ({"training": {"optimizer": "lion"}}, "optimizer must be one of"),
    ({"training": {"epochs": "ten"}}, "'epochs' must be int"),
    ({"training": {"learning_rate": "fast"}}, "'learning_rate' must be float"),
    ({"training": {"train_text_encoder": "yes"}}, "'train_text_encoder' must be bool"),
    ({"profile": "tiny-flux", "training": {"pivotal_tokens": 2}}, "transformer only"),
    ({"training": {"pivotal_tokens": 2}, "trigger": "cellula style",
      "validation_prompts": ["a cell"]}, "one word"),
    ({"training": {"base_quantization": "int3"}}, "base_quantization must be one of"),
    ({"training": {"output_preservation": -1.0}}, "output_preservation must be 0 \\(off\\)"),
    ({"evaluation": {"true_cfg_scale": 4.0}}, "already classifier-free"),
    ({"profile": "tiny-flux", "evaluation": {"true_cfg_scale": 0.5}}, "1 \\(off\\) or more"),
])
def test_bad_specs_name_the_problem(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, {**quick_spec(), **change}))


def test_yaml_exponent_without_a_dot_is_a_learning_rate(tmp_path: Path) -> None:
    spec = quick_spec()
    spec["training"]["learning_rate"] = "LR"
    file = _write(tmp_path, spec)
    file.write_text(file.read_text().replace("LR", "1e-3"))
    assert yaml.safe_load(file.read_text())["training"]["learning_rate"] == "1e-3"  # YAML 1.1
    assert load_spec(file).training.learning_rate == 1e-3


def test_file_name_is_the_partition_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="lowercase"):
        load_spec(_write(tmp_path, quick_spec(), name="My LoRA"))


def test_single_file_base_model_takes_its_config_folder(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, {**quick_spec(), "profile": "sdxl",
                                       "base_model": "/models/juggernautXL.safetensors",
                                       "base_model_config": "/models/sdxl-base-configs"}))
    profile = spec.model_profile
    assert profile.source == "/models/juggernautXL.safetensors"
    assert profile.single_file_config == "/models/sdxl-base-configs"


def test_a_hub_base_model_is_pinned_to_its_revision(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, {**quick_spec(), "profile": "sdxl",
                                       "base_model": "studio/sdxl-finetune",
                                       "base_model_revision": "1a2b3c4"}))
    assert spec.model_profile.revision == "1a2b3c4"
    with pytest.raises(SpecError, match="pins a hub id"):
        load_spec(_write(tmp_path, {**quick_spec(), "profile": "sdxl",
                                    "base_model": "/models/sdxl-base",
                                    "base_model_revision": "1a2b3c4"}))


def test_each_family_gets_its_own_guidance_default(tmp_path: Path) -> None:
    spec = quick_spec(profile="tiny-flux")
    spec["evaluation"].pop("guidance_scale", None)
    assert load_spec(_write(tmp_path, spec)).evaluation.guidance_scale == 3.5
    spec["profile"] = "tiny-sd15"
    assert load_spec(_write(tmp_path, spec)).evaluation.guidance_scale == 5.0


def test_the_rule_defaults_follow_the_lora_type_and_the_base(tmp_path: Path) -> None:
    """A subject LoRA redraws its subject, so its structure bar is lower; tiny-flux brings its
    own bleeding bar (models/profiles.py); a spec's own thresholds still go on top."""
    style = load_spec(_write(tmp_path, quick_spec())).evaluation.thresholds
    assert (style.min_structure, style.max_bleeding_ratio) == (0.7, 1.0)
    subject = load_spec(_write(tmp_path, quick_spec(type="subject"))).evaluation.thresholds
    assert subject.min_structure == 0.5
    flux = load_spec(_write(tmp_path, quick_spec(profile="tiny-flux"))).evaluation.thresholds
    assert flux.max_bleeding_ratio == 1.5
    spec = quick_spec(profile="tiny-flux")
    spec["evaluation"]["thresholds"] = {"max_bleeding_ratio": 0.8, "min_structure": 0.9}
    own = load_spec(_write(tmp_path, spec)).evaluation.thresholds
    assert (own.max_bleeding_ratio, own.min_structure) == (0.8, 0.9)
    spec["evaluation"]["thresholds"] = {"min_structur": 0.5}
    with pytest.raises(SpecError, match=r"unknown threshold\(s\) \['min_structur'\].*min_st"):
        load_spec(_write(tmp_path, spec))
