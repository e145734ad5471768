"""xy_plot_evaluation: the XY grid, per-cell metrics and the recommended checkpoint/weight."""


from pathlib import Path

import dagster as dg
import pandas as pd
from PIL import Image

from bioart_pipeline.common.charts import markdown_image
from bioart_pipeline.common.files import read_json, read_table, write_table
from bioart_pipeline.evaluation.scoring import epoch_of
from bioart_pipeline.evaluation.stage import (
    RECOMMENDATION,
    SCORES,
    XYJob,
    evaluation_folder,
    evaluation_key,
    prompt_grid_file,
)
from bioart_pipeline.evaluation.xy_plot import Checkpoint, XYSettings
from bioart_pipeline.licensing.manifest import training_rows
from bioart_pipeline.orchestration.compute import GpuCompute, gpu_asset
from bioart_pipeline.orchestration.metadata import path_value, stage_result, table_value
from bioart_pipeline.orchestration.resources import ClipModel, StudioData, Tracking
from bioart_pipeline.preprocessing.stage import preprocessed_file
from bioart_pipeline.training.checkpoints import checkpoint_table, trained_profile


def xy_plot_evaluation_asset(pool: str | None) -> dg.AssetsDefinition:
    """`pool`: the compute resource's (see lora_checkpoints_asset)."""

    @gpu_asset("xy_plot_evaluation", pool,
               ["lora_checkpoints", "license_manifest", "preprocessed_images"], {"pytorch"})
    def xy_plot_evaluation(context: dg.AssetExecutionContext, studio: StudioData,
                           compute: GpuCompute, tracking: Tracking, clip: ClipModel
                           ) -> dg.MaterializeResult:
        """Checkpoints x LoRA weights on the spec's prompts and fixed seeds, with a base
        column; model-free (and CLIP) measures per cell and a recommendation by a documented
        rule. Rendered and scored as a job on the compute resource."""
        return _evaluate(context, studio, compute, tracking, clip)

    return xy_plot_evaluation


def _evaluate(context: dg.AssetExecutionContext, studio: StudioData, compute: GpuCompute,
              tracking: Tracking, clip: ClipModel) -> dg.MaterializeResult:
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    checkpoints = checkpoint_table(workspace, spec.name).sort_values("epoch")
    profile = trained_profile(spec, Path(checkpoints["file"].iloc[-1]))
    ev = spec.evaluation
    settings = XYSettings(prompts=spec.validation_prompts, weights=ev.weights, seeds=ev.seeds,
                          steps=ev.steps, guidance_scale=ev.guidance_scale,
                          size=profile.resolution, true_cfg_scale=ev.true_cfg_scale)
    key = evaluation_key(list(checkpoints["sha256"]), settings, spec.trigger, ev.thresholds,
                         clip.model or None)
    folder = evaluation_folder(workspace, spec.name, key)
    manifest = training_rows(read_table(workspace.table("license_manifest", spec.name)))
    cache = workspace.cache_dir / "preprocessed"
    job = XYJob(
        lora=spec.name, profile=profile,
        checkpoints=tuple(Checkpoint(f"epoch {r.epoch}", Path(r.file))
                          for r in checkpoints.itertuples()),
        settings=settings,
        training_images=tuple(str(preprocessed_file(cache, k)) for k in manifest["key"]),
        trigger=spec.trigger, thresholds=ev.thresholds, clip_model=clip.model,
        models_dir=str(workspace.models_dir), tracking_name=f"{spec.name}-xy-{key}",
        wandb_mode=tracking.mode, wandb_project=tracking.project,
        placement=compute.placement)
    compute.run_once(context, job, folder, workspace.display_path(folder))
    scores = read_table(folder / SCORES)
    recommendation = read_json(folder / RECOMMENDATION)
    # The stage table lives beside the run folders so the next stage finds the current one.
    path = workspace.table("xy_plot_evaluation", spec.name)
    version = write_table(scores.assign(evaluation=key), path)
    return stage_result(workspace, path, version, {
        "evaluation_folder": path_value(workspace, folder),
        **_prompt_grids(folder, spec.validation_prompts),
        "recommended_checkpoint": str(recommendation["checkpoint"]),
        "recommended_weight": str(recommendation["weight"]),
        "usable_weight_range": str(recommendation["weight_range"]),
        "recommendation": dg.MetadataValue.json(recommendation),
        "scores": table_value(_scores_in_order(scores, recommendation)),
        "clip": recommendation["clip"],
        "note": "Scored on the tiny built-in base (textbook_tiny, 128 px): the look's direction "
                "is real, the fidelity is a toy's; pick a production weight on SDXL."
                if profile.is_builtin else "",
    }, upstream=workspace.tables(spec.name, "lora_checkpoints", "license_manifest"))


def _prompt_grids(folder: Path, prompts: tuple[str, ...]) -> dict[str, dg.MetadataValue]:
    """Each prompt's grid with its text: columns base + checkpoints, rows weights, the
    recommended cell framed in red."""
    grids = {}
    for index, prompt in enumerate(prompts):
        with Image.open(folder / prompt_grid_file(index)) as grid:
            picture = markdown_image(grid.copy(), f"XY grid: {prompt}", max_side=1280)
        grids[f"xy_grid_prompt_{index + 1}"] = dg.MetadataValue.md(f"**{prompt}**\n\n{picture}")
    return grids


def _scores_in_order(scores: pd.DataFrame, recommendation: dict) -> pd.DataFrame:
    """The base column first, then checkpoints by epoch (not as text) and weights; the
    recommended cell marked."""
    recommended = ((scores["checkpoint"] == recommendation["checkpoint"])
                   & (scores["weight"] == recommendation["weight"]))
    ordered = scores.assign(recommended=recommended,
                            epoch=scores["checkpoint"].map(epoch_of))
    ordered = ordered.sort_values(["epoch", "weight"]).drop(columns="epoch")
    first = ["checkpoint", "weight", "verdict", "recommended"]
    return ordered[first + [c for c in ordered.columns if c not in first]]
