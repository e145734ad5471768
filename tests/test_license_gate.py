"""The blocking license check: with license_policy fail, a refused image stops training."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from tests.conftest import make_data_dir, quick_spec

UP_TO_TRAINING = [dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images", "captions",
                                           "license_manifest", "lora_checkpoints")]


def test_refused_image_with_fail_policy_blocks_training(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, {"strict": quick_spec(license_policy="fail")})
    workspace = Workspace(data, tmp_path / "outputs")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["strict"])
    job = build_definitions(workspace).resolve_job_def("lora_pipeline")
    result = job.execute_in_process(partition_key="strict", instance=instance,
                                    asset_selection=UP_TO_TRAINING, raise_on_error=False)
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_refused_image_trains" and not check.passed
    assert "whole_cell_04.png" in str(check.metadata["images"].value)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "license_manifest" in materialized and "lora_checkpoints" not in materialized
    assert not (workspace.outputs_dir / "lora_checkpoints").exists()
