"""A pivotal-tuning LoRA through the same assets: its release ships the LoRA and the trigger's
embedding as separate files, and the two, loaded into a fresh pipeline the way a user loads
them, draw the approved cell of the XY grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.generation.embeddings import load_embeddings
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.release.audit import audit
from bioart_pipeline.release.trust import AuditTrust, studio_trust_anchor
from bioart_pipeline.specs import load_spec
from tests.conftest import quick_spec, release_through_the_demo_runs

LORA = "pivotal"
TRIGGER = "cellulastyle"  # no CLIP vocabulary entry has this name


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    spec = quick_spec(LORA)
    spec["training"] = {**spec["training"], "pivotal_tokens": 2}
    # Two epochs at 4 steps: the two new tokens alone redraw each seed's composition (structure
    # 0.28-0.67 against the base, which draws the raw trigger word); what this file tests is
    # the release of the embedding, not the rule's verdict on so short a run.
    spec["evaluation"] = {**spec["evaluation"], "thresholds": {"min_structure": 0.0}}
    workspace, folder = release_through_the_demo_runs(tmp_path_factory, LORA, spec)
    return {"workspace": workspace, "folder": folder}


def test_the_release_ships_the_embedding_beside_a_plain_lora(release: dict) -> None:
    folder = release["folder"]
    info = json.loads((folder / "release.json").read_text())
    assert info["embedding_files"] == [f"{TRIGGER}.safetensors"]
    lora = load_file(str(folder / info["lora_file"]))
    assert lora and not [k for k in lora if not k.startswith(("lora_unet_", "lora_te"))]
    embedding = load_file(str(folder / f"{TRIGGER}.safetensors"))
    assert {k: tuple(v.shape) for k, v in embedding.items()} == {"clip_l": (2, 32),
                                                                  "clip_g": (2, 64)}
    sums = (folder / "SHA256SUMS").read_text()
    assert f"  {TRIGGER}.safetensors" in sums
    card = (folder / "README.md").read_text()
    assert f"- `{TRIGGER}.safetensors`:" in card and f"`embedding:{TRIGGER}`" in card
    prompt = json.loads((folder / "comfyui_workflow.json").read_text())["3"]["inputs"]["text"]
    assert prompt.startswith(f"embedding:{TRIGGER}")
    sbom = json.loads((folder / "sbom.spdx3.json").read_text())["@graph"]
    (entry,) = [o for o in sbom if o.get("name") == f"{TRIGGER}.safetensors"]
    assert entry["verifiedUsing"][0]["hashValue"] == sha256_file(folder / entry["name"])
    report = audit(folder, release["workspace"].data_dir, release["workspace"].releases_dir,
                   AuditTrust(studio_trust_anchor(release["workspace"])))
    assert report.ok, report.problems


def test_lora_and_embedding_from_the_release_draw_the_approved_cell(release: dict) -> None:
    folder = release["folder"]
    review = json.loads((folder / "review.json").read_text())
    pipe = load_pipeline(get_profile("tiny"), release["workspace"].models_dir)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(folder / json.loads((folder / "release.json").read_text())[
        "lora_file"]))
    load_embeddings(pipe, {TRIGGER: load_file(str(folder / f"{TRIGGER}.safetensors"))})
    spec = load_spec(release["workspace"].data_dir / "loras" / f"{LORA}.yaml")
    evaluation = spec.evaluation
    image = pipe(spec.validation_prompts[0], num_inference_steps=evaluation.steps,
                 guidance_scale=evaluation.guidance_scale, height=128, width=128,
                 generator=torch.Generator("cpu").manual_seed(evaluation.seeds[0]),
                 cross_attention_kwargs={"scale": review["weight"]}).images[0]
    approved = np.asarray(Image.open(folder / "sample_1.png").convert("RGB"), dtype=np.int16)
    assert np.abs(approved - np.asarray(image, dtype=np.int16)).max() <= 2
