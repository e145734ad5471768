"""Blocking asset checks: a failing check stops everything downstream of its asset."""


import dagster as dg

from bioart_pipeline.common.files import read_table
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.licensing.rules import REFUSED
from bioart_pipeline.orchestration.assets.licensing import license_manifest
from bioart_pipeline.orchestration.assets.review import release_review
from bioart_pipeline.orchestration.assets.training import checkpoint_labels, checkpoint_table
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.release.review import human_only_base, latest_review, release_blocker


@dg.asset_check(asset=license_manifest, blocking=True, partitions_def=lora_partitions,
                description="Training never starts while a refused image is still included.")
def no_refused_image_trains(context: dg.AssetCheckExecutionContext, studio: StudioData
                            ) -> dg.AssetCheckResult:
    spec = studio.spec(context.partition_key)
    manifest = read_table(studio.workspace.table("license_manifest", spec.name))
    offending = manifest[(manifest["verdict"] == REFUSED) & manifest["included"]]
    return dg.AssetCheckResult(
        passed=offending.empty,
        metadata={"refused_and_included": len(offending),
                  "images": dg.MetadataValue.json(
                      {r.path: r.verdict_reason for r in offending.itertuples()}),
                  "policy": spec.license_policy},
        description=None if offending.empty else (
            f"{len(offending)} refused image(s) would train {spec.name} (license_policy: fail). "
            "Remove them from the portfolio, fix their license sidecars, or set "
            "license_policy: exclude."),
    )


@dg.asset_check(asset="xy_plot_evaluation", blocking=True, partitions_def=lora_partitions,
                description="The recommendation exists and passes the spec's thresholds.")
def recommendation_passes(context: dg.AssetCheckExecutionContext, studio: StudioData
                          ) -> dg.AssetCheckResult:
    spec = studio.spec(context.partition_key)
    _, recommendation = current_evaluation(studio.workspace, spec.name)
    return dg.AssetCheckResult(
        passed=bool(recommendation["passes"]),
        metadata={"checkpoint": str(recommendation["checkpoint"]),
                  "weight_range": str(recommendation["weight_range"]),
                  "reasoning": dg.MetadataValue.json(recommendation["reasoning"])},
    )


@dg.asset_check(asset=release_review, blocking=True, partitions_def=lora_partitions,
                description="A person approved a checkpoint of the current evaluation.")
def review_approves_release(context: dg.AssetCheckExecutionContext, studio: StudioData
                            ) -> dg.AssetCheckResult:
    lora, workspace = context.partition_key, studio.workspace
    evaluation, _ = current_evaluation(workspace, lora)
    review = latest_review(workspace.reviews_dir, lora, evaluation)
    blocker = release_blocker(review, lora, evaluation, checkpoint_labels(
        checkpoint_table(workspace, lora)), human_only_base(studio.spec(lora)))
    return dg.AssetCheckResult(
        passed=blocker is None, description=blocker,
        metadata={"evaluation": evaluation,
                  "reviewer": review.reviewer if review else "",
                  "demo_review": bool(review and review.demo)})
