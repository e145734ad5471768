"""SD 1.5 and Flux LoRAs through the same assets as SDXL: trained, exported, evaluated and
released, and the released file, loaded into a fresh pipeline of its family, draws the approved
cell of the XY grid. The quick spec trains a few steps, too few to pass the rule, so the rule is
relaxed to let the chain reach the release: that each family's demo LoRA learns and passes the
default rule is test_learning's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bioart_pipeline.models.families import family_of
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.release.audit import audit
from bioart_pipeline.release.trust import AuditTrust, studio_trust_anchor
from bioart_pipeline.specs import load_spec
from bioart_pipeline.training.export import read_metadata
from tests.conftest import (
    check_summary_against_manifest,
    quick_spec,
    release_through_the_demo_runs,
)

ANY_CELL = {"min_style_gain": -1e9, "max_memorization": 1.0, "max_memorization_gain": 1e9,
            "min_diversity_ratio": 0.0, "max_bleeding_ratio": 1e9, "min_structure": -1.0}
EXPECTED = {  # profile: (ModelSpec architecture, ss_base_model_version, key prefixes, loader)
    "tiny-sd15": ("stable-diffusion-v1/lora", "sd_v1", ("lora_unet_",),
                  "CheckpointLoaderSimple"),
    "tiny-flux": ("flux-1-dev/lora", "flux1", ("transformer.",), "UNETLoader"),
}


@pytest.fixture(scope="module", params=list(EXPECTED))
def release(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    profile = request.param
    name = profile.replace("-", "_")
    spec = quick_spec(name, profile=profile, portfolio=["portfolio/mitochondria"])
    spec["evaluation"] = {**spec["evaluation"], "thresholds": ANY_CELL}
    if profile == "tiny-flux":  # as the demo's Flux spec samples its tiny base
        spec["evaluation"].update(guidance_scale=1.0, true_cfg_scale=5.0)
    workspace, folder = release_through_the_demo_runs(tmp_path_factory, name, spec)
    return {"profile": profile, "workspace": workspace, "spec": name, "folder": folder}


def test_the_release_is_written_for_its_family(release: dict) -> None:
    folder = release["folder"]
    architecture, version, prefixes, loader = EXPECTED[release["profile"]]
    lora = folder / json.loads((folder / "release.json").read_text())["lora_file"]
    metadata = read_metadata(lora)
    assert (metadata["modelspec.architecture"], metadata["ss_base_model_version"]) == (
        architecture, version)
    assert all(k.startswith(prefixes) for k in load_file(str(lora)))
    workflow = json.loads((folder / "comfyui_workflow.json").read_text())
    assert workflow["1"]["class_type"] == loader
    report = audit(folder, release["workspace"].data_dir, release["workspace"].releases_dir,
                   AuditTrust(studio_trust_anchor(release["workspace"])))
    assert report.ok, report.problems
    check_summary_against_manifest(folder)


def test_the_released_lora_draws_the_approved_cell(release: dict) -> None:
    folder, workspace = release["folder"], release["workspace"]
    review = json.loads((folder / "review.json").read_text())
    spec = load_spec(workspace.data_dir / "loras" / f"{release['spec']}.yaml")
    pipe = load_pipeline(get_profile(release["profile"]), workspace.models_dir)
    pipe.set_progress_bar_config(disable=True)
    sampler = family_of(pipe).sampler
    if sampler is not None:
        pipe.scheduler = sampler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(str(folder / json.loads((folder / "release.json").read_text())[
        "lora_file"]))
    pipe.set_adapters(pipe.get_list_adapters()[family_of(pipe).denoiser],
                      adapter_weights=[review["weight"]])
    evaluation = spec.evaluation
    guidance = family_of(pipe).guidance_options(evaluation.guidance_scale,
                                                evaluation.true_cfg_scale, 1)
    image = pipe(prompt=spec.validation_prompts[0], num_inference_steps=evaluation.steps,
                 **guidance, height=128, width=128,
                 generator=torch.Generator("cpu").manual_seed(evaluation.seeds[0])).images[0]
    approved = np.asarray(Image.open(folder / "sample_1.png").convert("RGB"), dtype=np.int16)
    assert np.abs(approved - np.asarray(image, dtype=np.int16)).max() <= 2
