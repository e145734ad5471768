"""The release gates: what the three blocking checks decide, as plain functions the checks and
the release page share."""

from collections.abc import Callable

import dagster as dg

from bioart_pipeline.common.files import read_table
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.licensing.rules import REFUSED
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.release.review import human_only_base, latest_review, release_blocker
from bioart_pipeline.training.checkpoints import checkpoint_labels, checkpoint_table


def licence_gate(studio: StudioData, lora: str) -> dg.AssetCheckResult:
    spec = studio.spec(lora)
    manifest = read_table(studio.workspace.table("license_manifest", lora))
    offending = manifest[(manifest["verdict"] == REFUSED) & manifest["included"]]
    return dg.AssetCheckResult(
        passed=offending.empty,
        metadata={"refused_and_included": len(offending),
                  "images": dg.MetadataValue.json(
                      {r.path: r.verdict_reason for r in offending.itertuples()}),
                  "policy": spec.license_policy},
        description=(f"{int(manifest['included'].sum())} image(s) train; none refused"
                     if offending.empty else
                     f"{len(offending)} refused image(s) would train {lora} (license_policy: "
                     "fail). Remove them from the portfolio, fix their license sidecars, or set "
                     "license_policy: exclude."))


def recommendation_gate(studio: StudioData, lora: str) -> dg.AssetCheckResult:
    evaluation, recommendation = current_evaluation(studio.workspace, lora)
    cell = f"{recommendation['checkpoint']} at weight {recommendation['weight']}"
    return dg.AssetCheckResult(
        passed=bool(recommendation["passes"]),
        metadata={"evaluation": evaluation, "checkpoint": str(recommendation["checkpoint"]),
                  "weight_range": str(recommendation["weight_range"]),
                  "reasoning": dg.MetadataValue.json(recommendation["reasoning"])},
        description=(f"{cell} passes the spec's thresholds" if recommendation["passes"] else
                     f"no cell passes the spec's thresholds (best: {cell})"))


def review_gate(studio: StudioData, lora: str) -> dg.AssetCheckResult:
    workspace = studio.workspace
    evaluation, _ = current_evaluation(workspace, lora)
    review = latest_review(workspace.reviews_dir, lora, evaluation)
    blocker = release_blocker(review, lora, evaluation, checkpoint_labels(
        checkpoint_table(workspace, lora)), human_only_base(studio.spec(lora)))
    return dg.AssetCheckResult(
        passed=blocker is None,
        description=blocker or (f"{review.reviewer} approved {review.checkpoint} at weight "
                                f"{review.weight} on {review.reviewed_at}"),
        metadata={"evaluation": evaluation,
                  "reviewer": review.reviewer if review else "",
                  "demo_review": bool(review and review.demo)})


# check name -> (the asset it guards, the gate); the release page lists them in this order.
GATES: dict[str, tuple[str, Callable[[StudioData, str], dg.AssetCheckResult]]] = {
    "no_refused_image_trains": ("license_manifest", licence_gate),
    "recommendation_passes": ("xy_plot_evaluation", recommendation_gate),
    "review_approves_release": ("release_review", review_gate),
}


def release_gates(studio: StudioData, lora: str) -> dict[str, dg.AssetCheckResult]:
    return {name: gate(studio, lora) for name, (_, gate) in GATES.items()}
