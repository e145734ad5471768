"""validated_release is gated by blocking checks: the recommendation must pass and a person
must approve (recorded from release_review's launch config, as in the Dagster UI); a release
is immutable and a new one never overwrites the last."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from bioart_pipeline import cli
from bioart_pipeline.common.files import read_json, sha256_file
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.evaluation.clip_scores import TINY_CLIP_SOURCE
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.orchestration.assets.review import DEMO_TAG
from bioart_pipeline.release.bundle import verify_sums
from bioart_pipeline.release.review import (
    CHECKLIST,
    draft_review,
    human_only_base,
    release_blocker,
)
from bioart_pipeline.specs import load_spec
from bioart_pipeline.training.export import read_metadata
from tests.conftest import make_data_dir, quick_spec

LORA = "gated"
UP_TO_EVALUATION = [dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images", "captions",
                                             "license_manifest", "lora_checkpoints",
                                             "xy_plot_evaluation")]
REVIEW_AND_RELEASE = [dg.AssetKey("release_review"), dg.AssetKey("validated_release")]
ANSWERS = {**dict.fromkeys(CHECKLIST, "not shown"), "mitochondria": "pass", "colours": "pass"}
APPROVAL = {"reviewer": "Dr. A. Author", "decision": "approve", "checkpoint": "epoch 2",
            "weight": 0.5, "answers": ANSWERS, "notes": "cristae read well at 0.5"}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A LoRA trained and evaluated once (with the tiny CLIP configured); tests copy it."""
    root = tmp_path_factory.mktemp("gates")
    workspace = Workspace(make_data_dir(root, {LORA: quick_spec()}), root / "outputs")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BIOART_CLIP_MODEL", TINY_CLIP_SOURCE)
        result = _job(workspace).execute_in_process(partition_key=LORA, instance=_instance(),
                                                    asset_selection=UP_TO_EVALUATION)
    meta = result.asset_materializations_for_node("xy_plot_evaluation")[0].metadata
    assert meta["clip"].value == f"{TINY_CLIP_SOURCE}: random weights, scores recorded but not used"
    scores = meta["scores"]
    assert "clip_score_ratio" in [c.name for c in scores.schema.columns]
    marked = [r.data for r in scores.records if r.data["recommended"]]
    assert len(marked) == 1 and marked[0]["verdict"] == "pass"
    return workspace


@pytest.fixture
def workspace(evaluated: Workspace, tmp_path: Path) -> Workspace:
    shutil.copytree(evaluated.outputs_dir, tmp_path / "outputs")
    return Workspace(evaluated.data_dir, tmp_path / "outputs")


def _instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [LORA])
    return instance


def _job(workspace: Workspace) -> dg.JobDefinition:
    return build_definitions(workspace).resolve_job_def("lora_pipeline")


def _review_and_release(workspace: Workspace, review: dict, tags: dict | None = None
                        ) -> dg.ExecuteInProcessResult:
    return _job(workspace).execute_in_process(
        partition_key=LORA, instance=_instance(), asset_selection=REVIEW_AND_RELEASE,
        run_config={"ops": {"release_review": {"config": review}}}, raise_on_error=False,
        tags=tags)


def _release(workspace: Workspace) -> dg.ExecuteInProcessResult:
    return _job(workspace).execute_in_process(
        partition_key=LORA, instance=_instance(), raise_on_error=False,
        asset_selection=[dg.AssetKey("validated_release")])


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    return error.message


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _review_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [c for c in result.get_asset_check_evaluations()
                if c.check_name == "review_approves_release"]
    return check


def test_no_review_no_release(workspace: Workspace) -> None:
    result = _release(workspace)
    assert "no review of evaluation" in _failure(result)
    assert "Open launchpad" in _failure(result)
    assert not workspace.releases_dir.exists()


@pytest.mark.parametrize(("form", "error"), [
    ({k: v for k, v in APPROVAL.items() if k != "reviewer"},
     'Missing required config entry "reviewer"'),
    ({**APPROVAL, "decision": "aprove"}, "not in enum type"),
    ({**APPROVAL, "answers": {"mitochondira": "pass"}}, 'unexpected config entry "mitochondira"'),
    ({**APPROVAL, "answers": {"dna": "left-handed"}}, "not in enum type"),
])
def test_the_review_form_refuses_what_the_launchpad_can_see(workspace: Workspace, form: dict,
                                                            error: str) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match=error):
        _review_and_release(workspace, form)


@pytest.mark.parametrize(("form", "error"), [
    ({**APPROVAL, "reviewer": "  "}, "type your name"),
    ({**APPROVAL, "checkpoint": "epoch 20"}, "'epoch 20' is not one of this evaluation's: "
                                             "epoch 1, epoch 2"),
    ({**APPROVAL, "answers": {"mitochondria": "pass"}}, "not checked: cell_membrane, nucleus"),
    ({**APPROVAL, "weight": 0.7}, "weight 0.7 is not a row of the XY grid"),
])
def test_a_wrong_review_is_refused_with_the_reason(workspace: Workspace, form: dict,
                                                   error: str) -> None:
    result = _review_and_release(workspace, form)
    assert error in _failure(result)
    assert not (workspace.reviews_dir / LORA).exists() and not workspace.releases_dir.exists()


def test_the_form_defaults_to_the_recommended_cell(workspace: Workspace) -> None:
    form = {k: v for k, v in APPROVAL.items() if k not in ("checkpoint", "weight")}
    result = _review_and_release(workspace, form)
    assert result.success
    review = read_json(workspace.releases_dir / LORA / "v1" / "review.json")
    _, recommended = current_evaluation(workspace, LORA)
    assert (review["checkpoint"], review["weight"]) == (recommended["checkpoint"],
                                                        recommended["weight"])


def test_a_rejection_blocks_the_release(workspace: Workspace) -> None:
    result = _review_and_release(workspace, {**APPROVAL, "decision": "reject",
                                             "notes": "matrix missing"})
    check = _review_check(result)
    assert not check.passed and "Dr. A. Author rejected" in check.description
    assert "matrix missing" in check.description
    assert not workspace.releases_dir.exists()


def test_an_approval_that_fails_a_checklist_item_is_refused(workspace: Workspace) -> None:
    result = _review_and_release(workspace, {**APPROVAL, "answers": {**ANSWERS, "golgi": "fail"}})
    assert "cannot approve the release" in _failure(result)
    assert not (workspace.reviews_dir / LORA).exists()


def test_approval_from_the_launch_config_releases_with_its_papers(workspace: Workspace) -> None:
    result = _review_and_release(workspace, APPROVAL)
    assert result.success and _review_check(result).passed
    folder = workspace.releases_dir / LORA / "v1"
    assert verify_sums(folder) == []
    assert next(folder.glob("*.safetensors")).name == "cellula_cellstyle_32_2.safetensors"
    review = read_json(folder / "review.json")
    assert review["reviewer"] == "Dr. A. Author" and review["weight"] == 0.5
    assert review["checklist"] == APPROVAL["answers"] and not review["demo"]
    meta = result.asset_materializations_for_node("release_review")[0].metadata
    assert meta["decision"].value == "approve" and meta["checkpoint"].value == "epoch 2"


def test_a_second_release_leaves_the_first_untouched(workspace: Workspace) -> None:
    assert _review_and_release(workspace, APPROVAL).success
    first = workspace.releases_dir / LORA / "v1"
    before = {p.name: sha256_file(p) for p in first.iterdir()}

    again = _review_and_release(workspace, {**APPROVAL, "weight": 1.0, "checkpoint": "epoch 1"})
    assert again.success
    second = workspace.releases_dir / LORA / "v2"
    assert read_json(second / "review.json")["weight"] == 1.0
    assert next(second.glob("*.safetensors")).name == "cellula_cellstyle_32_1.safetensors"
    assert {p.name: sha256_file(p) for p in first.iterdir()} == before
    assert all(not p.stat().st_mode & 0o222 for p in first.iterdir())  # read-only


def test_a_failing_recommendation_stops_review_and_release(workspace: Workspace,
                                                           tmp_path: Path) -> None:
    strict = quick_spec(evaluation={**quick_spec()["evaluation"],
                                    "thresholds": {"min_style_gain": 10.0}})
    data = make_data_dir(tmp_path / "strict", {LORA: strict})
    strict_workspace = Workspace(data, workspace.outputs_dir)
    result = _job(strict_workspace).execute_in_process(
        partition_key=LORA, instance=_instance(), raise_on_error=False,
        asset_selection=[dg.AssetKey("xy_plot_evaluation"), *REVIEW_AND_RELEASE],
        run_config={"ops": {"release_review": {"config": APPROVAL}}})
    (check,) = [c for c in result.get_asset_check_evaluations()
                if c.check_name == "recommendation_passes"]
    assert not check.passed
    assert _materialized(result) == {"xy_plot_evaluation"}
    assert not workspace.releases_dir.exists()


def test_the_demo_approval_can_only_release_the_built_in_model(data_dir: Path) -> None:
    review = draft_review(LORA, "ev1", {"checkpoint": "epoch 2", "weight": 0.5},
                          "demo-reviewer (automated, not a human)", approved=True, demo=True)
    tiny = load_spec(next((data_dir / "loras").glob("*.yaml")))
    sdxl = dataclasses.replace(tiny, profile="sdxl")
    assert human_only_base(tiny) is None
    assert release_blocker(review, LORA, "ev1", ["epoch 2"], human_only_base(tiny)) is None
    blocker = release_blocker(review, LORA, "ev1", ["epoch 2"], human_only_base(sdxl))
    assert "recorded automatically by `make demo`" in blocker
    assert "stabilityai/stable-diffusion-xl-base-1.0" in blocker
    assert "A person must review it" in blocker
    human = dataclasses.replace(review, reviewer="Dr. A. Author", demo=False)
    assert release_blocker(human, LORA, "ev1", ["epoch 2"], human_only_base(sdxl)) is None


def test_the_demo_review_is_labelled_and_never_replaces_a_persons(workspace: Workspace) -> None:
    demo_form = {"reviewer": "demo-reviewer (automated, not a human)", "decision": "approve"}
    demo = {DEMO_TAG: "true"}
    assert _review_and_release(workspace, demo_form, demo).success
    assert read_json(workspace.releases_dir / LORA / "v1" / "review.json")["demo"]

    rejection = {**APPROVAL, "decision": "reject", "notes": "nucleolus missing"}
    assert not _review_and_release(workspace, rejection).success  # the check blocks
    again = _review_and_release(workspace, demo_form, demo)
    assert "Dr. A. Author rejected" in _review_check(again).description
    assert not (workspace.releases_dir / LORA / "v2").exists()


def _schedule_tick(workspace: Workspace) -> list[str]:
    defs = build_definitions(workspace)
    schedule = defs.resolve_schedule_def("lora_retraining_schedule")
    context = dg.build_schedule_context(instance=_instance(), resources=defs.resources)
    result = schedule(context)
    return [] if isinstance(result, dg.SkipReason) else [r.partition_key for r in result]


def test_schedule_retrains_a_released_lora_only_once_its_inputs_changed(
        workspace: Workspace, tmp_path: Path) -> None:
    assert _review_and_release(workspace, APPROVAL).success
    assert read_json(workspace.releases_dir / LORA / "v1" / "release.json")["inputs_fingerprint"]
    assert _schedule_tick(workspace) == []

    spec = quick_spec()
    spec["validation_prompts"].append("cellulastyle, a red blood cell")
    (workspace.data_dir / "loras" / f"{LORA}.yaml").write_text(yaml.safe_dump(spec))
    try:
        assert _schedule_tick(workspace) == [LORA]
    finally:  # the data folder is shared by this module's tests
        (workspace.data_dir / "loras" / f"{LORA}.yaml").write_text(yaml.safe_dump(quick_spec()))


def test_a_new_author_and_licence_re_export_without_retraining(workspace: Workspace,
                                                               tmp_path: Path) -> None:
    """Metadata-only spec fields change what the release says, not the weights."""
    data = tmp_path / "data"
    shutil.copytree(workspace.data_dir, data, symlinks=True)
    workspace = Workspace(data, workspace.outputs_dir)
    assert _review_and_release(workspace, APPROVAL).success
    spec_file = data / "loras" / f"{LORA}.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec_file.write_text(yaml.safe_dump({**spec, "author": "Atelier Nouveau",
                                         "release_license": "LicenseRef-Nouveau-Licence"}))
    trained = _job(workspace).execute_in_process(
        partition_key=LORA, instance=_instance(), asset_selection=[dg.AssetKey("lora_checkpoints")])
    assert trained.asset_materializations_for_node("lora_checkpoints")[0].metadata[
        "reused_previous_run"].value is True
    assert _release(workspace).success  # the review of this evaluation stands
    first, second = (next((workspace.releases_dir / LORA / v).glob("*.safetensors"))
                     for v in ("v1", "v2"))
    assert read_metadata(first)["modelspec.author"] == spec["author"]
    assert read_metadata(second)["modelspec.author"] == "Atelier Nouveau"
    assert read_metadata(second)["modelspec.license"] == "LicenseRef-Nouveau-Licence"
    assert read_metadata(first)["modelspec.hash_sha256"] == read_metadata(second)[
        "modelspec.hash_sha256"]


def test_bioart_review_refuses_what_the_form_refuses(workspace: Workspace, monkeypatch,
                                                     capsys) -> None:
    monkeypatch.setenv("BIOART_DATA_DIR", str(workspace.data_dir))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
    approve = ["review", LORA, "--reviewer", "Dr. A. Author", "--approve"]
    assert cli.main([*approve, "--answer", "mitochondria=pass", "--weight", "0.7"]) == 2
    error = capsys.readouterr().err
    assert "weight 0.7 is not a row of the XY grid" in error
    assert "not checked: cell_membrane" in error
    assert not (workspace.reviews_dir / LORA).exists()
    answers = [f"--answer={item}={answer}" for item, answer in ANSWERS.items()]
    assert cli.main([*approve, *answers]) == 0
    assert _release(workspace).success
