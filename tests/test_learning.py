"""The evaluation proved on real signal: LoRAs trained on the pretrained tiny base, as the demo
trains them, and scored by the XY plot's own code.

- the demo's style LoRA moves the palette towards the portfolio, more with more weight;
- prompts with the trigger change more than prompts without it (no bleeding);
- the recommendation passes the default rule and beats the base column on style gain;
- the demo's subject LoRA lowers its validation loss and passes the default rule too;
- every validation subject keeps its structure at the recommended cell, and the neuron whose
  dendrites melt at epoch 30, weight 1.2 fails the rule for it;
- so do the demo's SD 1.5 (pivotal-tuning) and Flux LoRAs, on their own pretrained tiny bases
  (the Flux one under tiny-flux's own bleeding bar, models/profiles.py TINY_FLUX_RULE);
- a LoRA trained far too long on a handful of images is refused for memorization, and it
  redraws them over a neuron prompt too, which the structure measure sees.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import pandas as pd
import pytest
import yaml

from bioart_pipeline.common.files import read_json
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.evaluation.scoring import BASE_LABEL, epoch_of
from bioart_pipeline.evaluation.stage import RECOMMENDATION, SCORES
from bioart_pipeline.models.profiles import get_profile
from bioart_pipeline.specs.thresholds import Thresholds
from tests.conftest import SAMPLE_DATA, make_data_dir

# About 10 minutes on 2 CPU cores: `make test-learning`, which CI runs after `make test`.
pytestmark = pytest.mark.learning

STYLE, SUBJECT = "cellula_style", "cellula_mitochondria"
UP_TO_EVALUATION = [dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images", "captions",
                                             "license_manifest", "lora_checkpoints",
                                             "xy_plot_evaluation")]


class Evaluated(NamedTuple):
    scores: pd.DataFrame
    recommendation: dict
    training_report: dict


def evaluate(root: Path, name: str, spec: dict) -> Evaluated:
    """Materialize one spec up to the XY plot: its scores, recommendation, training report."""
    workspace = Workspace(make_data_dir(root, {name: spec}), root / "outputs")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [name])
    result = build_definitions(workspace).resolve_job_def("lora_pipeline").execute_in_process(
        partition_key=name, instance=instance, asset_selection=UP_TO_EVALUATION,
        raise_on_error=False)  # a refused recommendation fails its blocking check
    folder = workspace.outputs_dir / (result.asset_materializations_for_node(
        "xy_plot_evaluation")[0].metadata["evaluation_folder"].value)
    run = workspace.outputs_dir / (result.asset_materializations_for_node(
        "lora_checkpoints")[0].metadata["run_folder"].value)
    return Evaluated(pd.read_parquet(folder / SCORES), read_json(folder / RECOMMENDATION),
                     read_json(run / "report.json"))


def _demo(factory: pytest.TempPathFactory, name: str) -> Evaluated:
    """A demo LoRA, exactly as `make demo` trains and evaluates it."""
    spec = yaml.safe_load((SAMPLE_DATA / "loras" / f"{name}.yaml").read_text())
    assert "thresholds" not in spec.get("evaluation", {})  # the default rule, not a loosened one
    return evaluate(factory.mktemp(name), name, spec)


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    return _demo(tmp_path_factory, STYLE)


@pytest.fixture(scope="module")
def subject(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    return _demo(tmp_path_factory, SUBJECT)


def _cells(scores: pd.DataFrame, checkpoint: str) -> pd.DataFrame:
    return scores[scores["checkpoint"] == checkpoint].sort_values("weight")


def test_the_palette_moves_towards_the_portfolio_as_the_weight_rises(style) -> None:
    scores, recommendation, _ = style
    base = scores[scores["checkpoint"] == BASE_LABEL]["palette_distance"].iloc[0]
    cells = _cells(scores, recommendation["checkpoint"])
    distances = list(cells["palette_distance"])
    assert all(later < earlier for earlier, later in zip(distances, distances[1:], strict=False)), \
        distances
    assert distances[0] < base


def test_prompts_with_the_trigger_change_more_than_prompts_without(style) -> None:
    scores, recommendation, _ = style
    cells = scores[scores["checkpoint"] != BASE_LABEL]
    assert (cells["trigger_change"] > cells["bleeding"]).all()
    chosen = _cells(scores, recommendation["checkpoint"])
    chosen = chosen[chosen["weight"] == recommendation["weight"]].iloc[0]
    assert chosen["bleeding_ratio"] < Thresholds().max_bleeding_ratio


def test_the_recommendation_passes_the_default_rule_and_beats_the_base(style) -> None:
    scores, recommendation, _ = style
    assert recommendation["passes"], recommendation["reasoning"]
    assert recommendation["thresholds"] == Thresholds().__dict__
    chosen = _cells(scores, recommendation["checkpoint"])
    chosen = chosen[chosen["weight"] == recommendation["weight"]].iloc[0]
    base = scores[scores["checkpoint"] == BASE_LABEL].iloc[0]
    assert chosen["style_gain"] > 0
    assert chosen["palette_distance"] < base["palette_distance"]


def test_the_neuron_that_melts_at_the_strongest_cell_fails_for_its_structure(style) -> None:
    """At epoch 30, weight 1.2 the neuron prompt's soma is gone and its dendrites melt into a
    blob (seed 1) or break apart (seed 2): that cell fails, and the recommendation is a cell
    where every validation subject keeps the base image's structure."""
    scores, recommendation, _ = style
    last = _cells(scores, max(set(scores["checkpoint"]) - {BASE_LABEL}, key=epoch_of))
    strongest = last[last["weight"] == last["weight"].max()].iloc[0]
    assert strongest["structure"] < Thresholds().min_structure
    assert "lost structure" in strongest["verdict"]
    chosen = _cells(scores, recommendation["checkpoint"])
    chosen = chosen[chosen["weight"] == recommendation["weight"]].iloc[0]
    assert chosen["structure"] >= Thresholds().min_structure
    assert recommendation["weight"] < strongest["weight"]


def test_the_demo_subject_lora_learns_and_passes_the_default_rule(subject) -> None:
    scores, recommendation, report = subject
    losses = report["validation_losses"]  # before training, then after each epoch
    assert len(losses) == report["epochs"] + 1
    every = yaml.safe_load((SAMPLE_DATA / "loras" / f"{SUBJECT}.yaml").read_text()
                           )["training"]["save_every_n_epochs"]
    checkpoints = losses[::every]
    assert all(b < a for a, b in zip(checkpoints, checkpoints[1:], strict=False)), checkpoints
    assert losses[-1] < 0.7 * losses[0], losses  # demo figures: 0.066 -> 0.031
    assert recommendation["passes"], recommendation["reasoning"]
    chosen = _cells(scores, recommendation["checkpoint"])
    assert (chosen[chosen["weight"] == recommendation["weight"]]["style_gain"] > 0).all()


@pytest.mark.parametrize("name", ["cellula_mitochondria_sd15", "cellula_style_flux"])
def test_each_family_demo_lora_learns_and_passes_its_rule(
        tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    spec = yaml.safe_load((SAMPLE_DATA / "loras" / f"{name}.yaml").read_text())
    assert "thresholds" not in spec["evaluation"]  # the rule of its type and base, no override
    scores, recommendation, report = evaluate(tmp_path_factory.mktemp(name), name, spec)
    rule = Thresholds.for_type(spec["type"], **get_profile(spec["profile"]).rule_defaults)
    assert recommendation["thresholds"] == asdict(rule)
    losses = report["validation_losses"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert recommendation["passes"], recommendation["reasoning"]
    chosen = _cells(scores, recommendation["checkpoint"])
    chosen = chosen[chosen["weight"] == recommendation["weight"]].iloc[0]
    base = scores[scores["checkpoint"] == BASE_LABEL].iloc[0]
    assert chosen["style_gain"] > 0
    assert chosen["palette_distance"] < base["palette_distance"]


HANDFUL = ("mito_longitudinal_01", "mito_crosssection_01", "mito_pair_01")


def test_a_lora_trained_far_too_long_on_a_handful_of_images_is_refused_as_memorized(
        tmp_path: Path) -> None:
    """Three artworks, 200 epochs: asked for their captions, the LoRA redraws them, asked for a
    neuron it draws them too, and the rule must refuse it. The tiny base's redraws stay below
    the absolute 0.95, so it is the memorization gain over the base that refuses them (see
    evaluation/scoring.py), and the structure measure that sees the neuron replaced."""
    source = SAMPLE_DATA / "portfolio" / "mitochondria"
    handful = tmp_path / "handful"
    handful.mkdir()
    shutil.copy(source / "_default.license.yaml", handful)
    for stem in HANDFUL:
        for suffix in (".png", ".txt"):
            shutil.copy(source / f"{stem}{suffix}", handful)
    spec = yaml.safe_load((SAMPLE_DATA / "loras" / f"{STYLE}.yaml").read_text())
    captions = [(source / f"{stem}.txt").read_text().strip() for stem in HANDFUL]
    spec.update(portfolio=[str(handful)], validation_prompts=[
        f"{spec['trigger']}, {captions[0]}", f"{spec['trigger']}, {captions[2]}",
        f"{spec['trigger']}, a neuron with dendrites and an axon", "a mitochondrion"])
    spec["training"] = {**spec["training"], "epochs": 200, "save_every_n_epochs": 200}
    # Sampled at 12 steps, not the demo's 8: fewer steps blur the redraws a little (the gain
    # at weight 1.2 read 0.2995 at 8 steps), and real bases are evaluated at 25-30.
    spec["evaluation"] = {**spec["evaluation"], "steps": 12}
    scores, recommendation, _ = evaluate(tmp_path / "run", "overtrained", spec)
    cells = _cells(scores, "epoch 200")
    gains = list(cells["memorization_gain"])
    assert gains == sorted(gains), gains  # more weight, closer to the artworks
    assert gains[-1] >= Thresholds().max_memorization_gain, cells
    assert not recommendation["passes"]
    assert any("look memorized" in line and not line.startswith("0 ")
               for line in recommendation["reasoning"])
    # Asked for a neuron, it draws its mitochondria from weight 0.6 on (structure 0.37-0.45
    # against the base's neuron), before the memorization gain reaches its bar (at 1.0).
    strong = cells[cells["weight"] >= 0.8]
    assert (strong["structure"] < Thresholds().min_structure).all(), cells
    assert strong["verdict"].str.contains("lost structure").all()
