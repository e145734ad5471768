"""The whole graph, materialized in-process by Dagster on the tiny model, for one partition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import torch
from PIL import Image, PngImagePlugin
from safetensors.torch import load_file

from bioart_pipeline import cli
from bioart_pipeline.cli import _demo_runs
from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.models.builtin import TINY_VERSION
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.release.audit import audit
from bioart_pipeline.release.bundle import verify_sums
from bioart_pipeline.training.export import read_metadata
from tests.conftest import make_data_dir, quick_spec

PARTITION = "test_style"
ALL_BUT_RELEASE = [dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images", "captions",
                                            "license_manifest", "lora_checkpoints",
                                            "xy_plot_evaluation")]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the chain once for the module; tests inspect what it left behind."""
    data_dir = make_data_dir(tmp_path_factory.mktemp("e2e"), copy=True)
    _sign_as_the_studio(data_dir / "portfolio" / SIGNED_IMAGE)
    workspace = Workspace(data_dir, tmp_path_factory.mktemp("outputs"))
    defs = build_definitions(workspace)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [PARTITION])
    job = defs.resolve_job_def("lora_pipeline")
    first = job.execute_in_process(partition_key=PARTITION, instance=instance,
                                   asset_selection=ALL_BUT_RELEASE)
    _, _, assets, run_config, tags = _demo_runs()[1]  # the demo's review and release
    release = job.execute_in_process(
        partition_key=PARTITION, instance=instance, run_config=run_config, tags=tags,
        asset_selection=[dg.AssetKey(k) for k in assets])
    return {"workspace": workspace, "first": first, "release": release, "job": job,
            "instance": instance}


SIGNED_IMAGE = "cells/nucleus_closeup_01.png"  # own work: the studio's notice in the file


def _sign_as_the_studio(path: Path) -> None:
    """The same pixels with the studio's own notice in PNG text chunks, as a studio's export
    writes them: consistent with the sidecar, so the image still trains."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Cellula Studio")
    info.add_text("Copyright", "© 2026 Cellula Studio. All rights reserved.")
    with Image.open(path) as image:
        image.load()
        image.save(path, pnginfo=info)


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
    manifest = pd.read_parquet(workspace.stage_dir("license_manifest", PARTITION)
                               / "manifest.parquet")
    nc = manifest[manifest["license"].str.contains("NC")]
    assert len(nc) == 1 and not nc["included"].iloc[0]
    assert nc["verdict"].iloc[0] == "refused"
    assert manifest["included"].sum() == len(manifest) - 1
    assert "CC-BY-4.0" in set(manifest["license"])
    attribution = (workspace.stage_dir("license_manifest", PARTITION) / "ATTRIBUTION.md")
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
    folder = _release_folder(pipeline_run)
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
    assert metadata["bioart.release_id"] == f"{PARTITION}-v1"
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
    trained = manifest[manifest["included"]]
    assert f"**Size**: {len(trained)} images" in summary
    files = [str(workspace.data_dir), *manifest["path"], *(Path(p).stem for p in manifest["path"])]
    assert not [p for p in files if p in summary]  # counts, never a file listing


def test_the_release_draws_in_comfyui_and_a1111_at_the_approved_weight(pipeline_run: dict
                                                                       ) -> None:
    folder = _release_folder(pipeline_run)
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
    folder = _release_folder(pipeline_run)
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
    again = job.execute_in_process(partition_key=PARTITION, instance=instance,
                                   run_config=run_config, tags=tags)
    assert again.success
    assert _metadata(again, "preprocessed_images")["processed"].value == 0
    assert _metadata(again, "lora_checkpoints")["reused_previous_run"].value is True
    assert _metadata(again, "validated_release")["new_version"].value is False


def _release_folder(pipeline_run: dict) -> Path:
    shown = _metadata(pipeline_run["release"], "validated_release")["release_folder"].value
    assert shown == f"releases/{PARTITION}/v1"  # relative: no home folders on screen
    return pipeline_run["workspace"].outputs_dir / shown


def test_audit_lists_exactly_the_training_images(pipeline_run: dict, capsys, monkeypatch
                                                 ) -> None:
    workspace = pipeline_run["workspace"]
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    assert cli.main(["audit", str(_release_folder(pipeline_run)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    manifest = pd.read_parquet(workspace.stage_dir("license_manifest", PARTITION)
                               / "manifest.parquet")
    trained = sorted(manifest[manifest["included"]]["path"])
    assert [i["path"] for i in report["images"]] == trained
    assert all(i["on_disk"] == "verified" for i in report["images"])
    assert report["ok"] and report["base_model"]["source"] == f"builtin:{TINY_VERSION}"
    assert set(report["dagster_runs"]) >= {"raw_portfolio", "lora_checkpoints"}
    rights = {i["path"]: i["embedded_rights"] for i in report["images"] if i["embedded_rights"]}
    assert rights == {f"portfolio/{SIGNED_IMAGE}": "PNG Author: Cellula Studio | PNG Copyright: "
                                                   "© 2026 Cellula Studio. All rights reserved."}


def test_audit_names_an_altered_training_image(pipeline_run: dict, capsys, monkeypatch
                                               ) -> None:
    workspace = pipeline_run["workspace"]
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    target = workspace.data_dir / "portfolio" / "mitochondria" / "mito_crosssection_01.png"
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"tampered")
        lora = next(_release_folder(pipeline_run).glob("*.safetensors"))
        assert cli.main(["audit", str(lora)]) == 1
        out = capsys.readouterr().out
        assert "portfolio/mitochondria/mito_crosssection_01.png: changed since training" in out
    finally:
        target.write_bytes(original)


def _copy_of_release(pipeline_run: dict, tmp_path: Path) -> Path:
    copy = tmp_path / "releases" / PARTITION / "v1"
    shutil.copytree(_release_folder(pipeline_run), copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def test_audit_names_the_signer(pipeline_run: dict, capsys, monkeypatch) -> None:
    workspace = pipeline_run["workspace"]
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    assert cli.main(["audit", str(_release_folder(pipeline_run))]) == 0
    out = capsys.readouterr().out
    assert "signed by: O=Cellula Studio,CN=test certificate" in out
    assert "rights in the file: PNG Author: Cellula Studio | PNG Copyright: © 2026" in out


@pytest.mark.parametrize("target", ["*.safetensors", "license_manifest.parquet",
                                    "TRAINING_DATA_SUMMARY.md", "xy_grid.png"])
def test_one_changed_byte_fails_the_audit_naming_the_file(pipeline_run: dict, tmp_path: Path,
                                                          target: str) -> None:
    folder = _copy_of_release(pipeline_run, tmp_path)
    (path,) = folder.glob(target)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = audit(folder, pipeline_run["workspace"].data_dir, tmp_path / "releases")
    assert f"release file {path.name}: sha256 differs from SHA256SUMS" in report.problems


def test_rewritten_sums_break_the_signature(pipeline_run: dict, tmp_path: Path) -> None:
    """Changing a file and SHA256SUMS together is what the signature is there to catch."""
    folder = _copy_of_release(pipeline_run, tmp_path)
    summary = folder / "TRAINING_DATA_SUMMARY.md"
    summary.write_text(summary.read_text().replace("## 3.", "## 3. (edited)"))
    sums = folder / "SHA256SUMS"
    sums.write_text("".join(
        f"{sha256_file(summary)}  {summary.name}\n" if line.endswith(summary.name) else
        line + "\n" for line in sums.read_text().splitlines()))
    report = audit(folder, pipeline_run["workspace"].data_dir, tmp_path / "releases")
    assert report.problems == [
        "SHA256SUMS: its signature does not verify (it or SHA256SUMS.sig changed)"]
