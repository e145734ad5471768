"""The whole graph, materialized in-process by Dagster on the tiny model, for one partition."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import torch
from safetensors.torch import load_file

from bioart_pipeline.cli import _demo_runs
from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.release.bundle import verify_sums
from bioart_pipeline.training.export import read_metadata
from tests.conftest import E2E_PARTITION, check_summary_against_manifest, quick_spec, release_folder


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return result.asset_materializations_for_node(asset)[0].metadata


def test_every_stage_materializes(pipeline_run: dict) -> None:
    assert pipeline_run["first"].success
    assert pipeline_run["release"].success
    checks = pipeline_run["first"].get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {
        "no_refused_image_trains": True, "recommendation_passes": True}


def test_each_stage_names_the_data_versions_it_read(pipeline_run: dict) -> None:
    first = pipeline_run["first"]
    materializations = [e.materialization for e in first.get_asset_materialization_events()]
    versions = {m.asset_key.to_user_string(): m.tags.get("dagster/data_version")
                for m in materializations}
    read = _metadata(first, "license_manifest")["upstream_data_versions"].value
    assert all(read.values())
    assert read == {k: versions[k] for k in ("raw_portfolio", "preprocessed_images", "captions")}


def test_non_commercial_image_is_kept_out_of_the_commercial_lora(pipeline_run: dict) -> None:
    workspace = pipeline_run["workspace"]
    manifest = pd.read_parquet(workspace.stage_dir("license_manifest", E2E_PARTITION)
                               / "manifest.parquet")
    nc = manifest[manifest["license"].str.contains("NC")]
    assert len(nc) == 1 and not nc["included"].iloc[0]
    assert nc["verdict"].iloc[0] == "refused"
    assert manifest["included"].sum() == len(manifest) - 1
    assert "CC-BY-4.0" in set(manifest["license"])
    attribution = (workspace.stage_dir("license_manifest", E2E_PARTITION) / "ATTRIBUTION.md")
    assert "creativecommons.org/licenses/by/4.0" in attribution.read_text()


def test_training_reports_checkpoints_and_loss(pipeline_run: dict) -> None:
    meta = _metadata(pipeline_run["first"], "lora_checkpoints")
    assert meta["optimizer_steps"].value > 0
    table = pd.read_parquet(pipeline_run["workspace"].outputs_dir / meta["table"].value)
    assert list(table["epoch"]) == [1, 2]
    assert all(Path(f).exists() for f in table["file"])
    assert "data:image/png;base64" in meta["validation_samples"].value
    assert 0 <= meta["outside_model_fraction"].value < 1


def test_release_folder_is_complete_and_verifiable(pipeline_run: dict) -> None:
    folder = release_folder(pipeline_run)
    names = {p.name for p in folder.iterdir()}
    assert {"README.md", "ATTRIBUTION.md", "license_manifest.parquet", "xy_grid.png",
            "training_config.json", "review.json", "SHA256SUMS", "comfyui_workflow.json",
            "TRAINING_DATA_SUMMARY.md", "xy_scores.parquet", "release.json",
            "sbom.spdx3.json"} <= names
    card = (folder / "README.md").read_text()
    listed = {n for n in names if not n.startswith(".")}  # .fingerprint: the folder's own
    assert [n for n in listed if f"- `{n}`:" not in card] == []
    lora = next(folder.glob("cellula_cellstyle_32_*.safetensors"))
    assert verify_sums(folder) == []
    keys = load_file(str(lora))
    assert keys and all(k.startswith("lora_unet_") for k in keys)
    metadata = read_metadata(lora)
    assert metadata["ss_base_model_version"].startswith("sdxl_")
    assert metadata["bioart.release_id"] == f"{E2E_PARTITION}-v1"
    # Nothing that lists or locates the training set leaves in the file.
    workspace = pipeline_run["workspace"]
    manifest = pd.read_parquet(folder / "license_manifest.parquet")
    private = [str(workspace.data_dir), str(workspace.outputs_dir), "portfolio",
               *(Path(p).stem for p in manifest["path"])]
    assert not [v for v in metadata.values() for p in private if p in v]
    assert not {"ss_dataset_dirs", "ss_tag_frequency", "ss_datasets"} & set(metadata)
    sbom = json.loads((folder / "sbom.spdx3.json").read_text())["@graph"]
    (package,) = [o for o in sbom if o["type"] == "ai_AIPackage" and o["name"] == lora.name]
    assert package["verifiedUsing"][0]["hashValue"] == sha256_file(lora)
    assert len([o for o in sbom if o["type"] == "software_File"]) == manifest["included"].sum()
    summary = (folder / "TRAINING_DATA_SUMMARY.md").read_text()
    check_summary_against_manifest(folder)
    files = [str(workspace.data_dir), *manifest["path"], *(Path(p).stem for p in manifest["path"])]
    assert not [p for p in files if p in summary]  # counts, never a file listing


def test_the_release_draws_in_comfyui_and_a1111_at_the_approved_weight(pipeline_run: dict
                                                                       ) -> None:
    folder = release_folder(pipeline_run)
    lora = next(folder.glob("*.safetensors"))
    review = json.loads((folder / "review.json").read_text())
    workflow = json.loads((folder / "comfyui_workflow.json").read_text())
    nodes = {n["class_type"]: n["inputs"] for n in workflow.values()}
    assert nodes["LoraLoader"]["lora_name"] == lora.name
    assert nodes["LoraLoader"]["strength_model"] == review["weight"]
    evaluation = quick_spec()["evaluation"]
    assert nodes["KSampler"]["steps"] == evaluation["steps"]
    assert nodes["KSampler"]["seed"] == evaluation["seeds"][0]
    card = (folder / "README.md").read_text()
    assert f"<lora:{lora.stem}:{review['weight']:g}>" in card
    assert "![XY grid](xy_grid.png)" in card


def test_released_lora_changes_the_image_when_loaded_by_diffusers(pipeline_run: dict) -> None:
    workspace = pipeline_run["workspace"]
    folder = release_folder(pipeline_run)
    pipe = load_pipeline(get_profile("tiny"), workspace.models_dir)
    pipe.set_progress_bar_config(disable=True)

    def render() -> torch.Tensor:
        out = pipe("cellulastyle, a nucleus", num_inference_steps=3, output_type="pt",
                   generator=torch.Generator().manual_seed(0))
        return out.images

    before = render()
    pipe.load_lora_weights(str(next(folder.glob("*.safetensors"))))
    assert not torch.allclose(before, render())


def test_rerun_does_no_redundant_work(pipeline_run: dict) -> None:
    job, instance = pipeline_run["job"], pipeline_run["instance"]
    _, _, _, run_config, tags = _demo_runs()[1]  # the review stands: the demo adds none
    again = job.execute_in_process(partition_key=E2E_PARTITION, instance=instance,
                                   run_config=run_config, tags=tags)
    assert again.success
    assert _metadata(again, "preprocessed_images")["processed"].value == 0
    assert _metadata(again, "lora_checkpoints")["reused_previous_run"].value is True
    assert _metadata(again, "validated_release")["new_version"].value is False
