"""The code location loads, with every asset, check, sensor and job in one Definitions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dagster as dg

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import defs
from bioart_pipeline.orchestration.partitions import register_spec_partitions

STAGES = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest",
          "lora_checkpoints", "xy_plot_evaluation", "release_review", "validated_release"]
PACKAGE = Path(__file__).resolve().parents[1] / "bioart_pipeline"


def test_definitions_hold_every_stage_as_a_partitioned_asset() -> None:
    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == sorted(STAGES)
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition)
        assert partitions.name == "lora_specs"
    assert defs.resolve_job_def("lora_pipeline") is not None
    assert {s.name for s in defs.sensors} == {"retraining_sensor"}
    (schedule,) = defs.schedules
    assert schedule.name == "lora_retraining_schedule"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # off until turned on


def test_lineage_runs_portfolio_to_release() -> None:
    graph = defs.resolve_asset_graph()
    for upstream, downstream in zip(STAGES, STAGES[1:], strict=False):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} does not depend on {upstream}"


def test_everything_the_ui_lists_says_what_it_is() -> None:
    """The UI shows these descriptions; an empty one leaves a person guessing."""
    graph = defs.resolve_asset_graph()
    described = {f"asset {k.to_user_string()}": graph.get(k).description
                 for k in graph.get_all_asset_keys()}
    described |= {f"check {k.name}": graph.get_check_spec(k).description
                  for k in graph.asset_check_keys}
    described |= {f"sensor {s.name}": s.description for s in defs.sensors}
    described |= {f"schedule {s.name}": s.description for s in defs.schedules}
    described |= {f"job {j.name}": j.description for j in defs.jobs}
    assert len(described) == len(STAGES) + 4 + 1 + 1 + 2
    assert [name for name, text in described.items() if not (text or "").strip()] == []


def test_one_group_shows_the_whole_pipeline() -> None:
    graph = defs.resolve_asset_graph()
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == {
        "portfolio_to_release"}


def test_gpu_assets_share_one_pool() -> None:
    graph = defs.resolve_asset_graph()
    pools = {k.to_user_string(): graph.get(k).pools for k in graph.get_all_asset_keys()}
    assert pools["lora_checkpoints"] == {"gpu"}
    assert pools["xy_plot_evaluation"] == {"gpu"}


def test_register_spec_partitions_adds_only_new_files(data_dir: Path, tmp_path: Path) -> None:
    workspace = Workspace(data_dir, tmp_path / "outputs")
    instance = dg.DagsterInstance.ephemeral()
    assert register_spec_partitions(instance, workspace) == ["test_style"]
    assert register_spec_partitions(instance, workspace) == []


def test_core_layer_does_not_import_dagster() -> None:
    """The remote training process imports only the core (plus dagster-pipes)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "orchestration" in path.parts or path.name in ("definitions.py", "cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "dagster" or n.startswith("dagster.") for n in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_dagster_process_loads_no_model_stack() -> None:
    """Every run and the UI's code server import the definitions: the model libraries load
    in the jobs that run a model (seconds per process), never with the definitions."""
    stack = ("torch", "diffusers", "transformers", "peft", "open_clip", "wandb", "accelerate")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bioart_pipeline.definitions; "
         f"print(' '.join(m for m in {stack!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
