"""A pivotal-tuning LoRA through the same assets: its release ships the LoRA and the trigger's
embedding as separate files, and the two, loaded into a fresh pipeline the way a user loads
them, draw the approved cell of the XY grid."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bioart_pipeline.cli import _demo_runs
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.release.audit import audit
from bioart_pipeline.specs import load_spec
from bioart_pipeline.training.pivotal import load_embeddings
from tests.conftest import make_data_dir, quick_spec

LORA = "pivotal"
TRIGGER = "cellulastyle"  # no CLIP vocabulary entry has this name


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    spec = quick_spec(LORA)
    spec["training"] = {**spec["training"], "pivotal_tokens": 2}
    data_dir = make_data_dir(tmp_path_factory.mktemp("pivotal"), {LORA: spec})
    workspace = Workspace(data_dir, tmp_path_factory.mktemp("outputs"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [LORA])
    defs = build_definitions(workspace)
    for _, job_name, assets, run_config, tags in _demo_runs():
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=LORA, instance=instance, run_config=run_config, tags=tags,
            asset_selection=[dg.AssetKey(a) for a in assets])
        assert result.success
    materialization = result.asset_materializations_for_node("validated_release")[0]
    folder = workspace.outputs_dir / materialization.metadata["release_folder"].value
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
    report = audit(folder, release["workspace"].data_dir, release["workspace"].releases_dir)
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
