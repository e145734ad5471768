"""The demo's own subject LoRA, trained as `make demo` trains it: the loss must fall."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import yaml

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from tests.conftest import SAMPLE_DATA, make_data_dir

LORA = "cellula_mitochondria"


def test_demo_subject_lora_lowers_its_validation_loss_every_epoch(tmp_path: Path) -> None:
    spec = yaml.safe_load((SAMPLE_DATA / "loras" / f"{LORA}.yaml").read_text())
    defs = build_definitions(Workspace(make_data_dir(tmp_path, {LORA: spec}), tmp_path / "out"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [LORA])
    result = defs.resolve_job_def("lora_pipeline").execute_in_process(
        partition_key=LORA, instance=instance,
        asset_selection=[dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images",
                                                  "captions", "license_manifest",
                                                  "lora_checkpoints")])
    meta = result.asset_materializations_for_node("lora_checkpoints")[0].metadata
    before, final = meta["validation_loss_before"].value, meta["validation_loss_final"].value
    assert final < before - 0.05, (before, final)  # demo figures: 1.156 -> 1.060
    report = json.loads((Path(meta["run_folder"].value) / "report.json").read_text())
    losses = report["validation_losses"]
    assert len(losses) == report["epochs"] + 1  # before training, then after each epoch
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False))
