"""validated_release: the approved checkpoint with its papers, in an immutable folder."""


import dataclasses
from pathlib import Path

import dagster as dg

from bioart_pipeline.common.files import read_json, read_table, sha256_file
from bioart_pipeline.evaluation.stage import GRID, SCORES, current_evaluation
from bioart_pipeline.orchestration.assets.licensing import ATTRIBUTION
from bioart_pipeline.orchestration.assets.training import (
    checkpoint_labels,
    checkpoint_table,
    trained_profile,
)
from bioart_pipeline.orchestration.metadata import data_version
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.portfolio.changes import INPUTS_FILE
from bioart_pipeline.release.bundle import SUMS, ReleaseInputs, publish
from bioart_pipeline.release.model_card import model_card
from bioart_pipeline.release.review import human_only_base, latest_review, release_blocker
from bioart_pipeline.training.export import spec_metadata
from bioart_pipeline.training.job import REPORT

UPSTREAM = ("raw_portfolio", "preprocessed_images", "captions", "license_manifest",
            "lora_checkpoints", "xy_plot_evaluation", "release_review")


@dg.asset(partitions_def=lora_partitions, group_name="release", kinds={"safetensors"},
          deps=["release_review", "xy_plot_evaluation", "license_manifest",
                "lora_checkpoints"])
def validated_release(context: dg.AssetExecutionContext, studio: StudioData
                      ) -> dg.MaterializeResult:
    """The reviewed checkpoint as {project}_{subject}_{rank}_{epoch}.safetensors with its
    model card, manifest, attribution, XY grid, config, review and SHA256SUMS."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    evaluation, recommendation = current_evaluation(workspace, spec.name)
    review = latest_review(workspace.reviews_dir, spec.name, evaluation)
    # The blocking check on release_review stops this in a run that includes it; this guard
    # covers a release materialized on its own.
    checkpoints = checkpoint_table(workspace, spec.name)
    labels = checkpoint_labels(checkpoints)
    blocker = release_blocker(review, spec.name, evaluation, labels, human_only_base(spec))
    if blocker:
        raise dg.Failure(blocker)
    row = checkpoints.iloc[labels.index(review.checkpoint)]
    manifest_file = workspace.table("license_manifest", spec.name)
    manifest_dir = manifest_file.parent
    eval_dir = workspace.stage_dir("xy_plot_evaluation", spec.name) / evaluation
    profile = trained_profile(spec, Path(row["file"]))
    report = read_json(Path(row["file"]).parent / REPORT)
    card = model_card(
        title=f"{spec.project} {spec.subject}", spec_type=spec.type, trigger=spec.trigger,
        release_license=spec.release_license,
        base_model=profile.pinned_source,
        base_model_license=profile.base_model_license,
        base_model_origin=profile.base_model_origin, intended_use=spec.intended_use,
        recommendation=recommendation, review=review,
        manifest=read_table(manifest_file), epoch=int(row["epoch"]),
        rank=spec.training.rank, alpha=spec.training.alpha)
    folder, created = publish(workspace.releases_dir, ReleaseInputs(
        lora=spec.name, stem=spec.release_stem(int(row["epoch"])),
        checkpoint_file=Path(row["file"]), manifest_file=manifest_file,
        attribution_file=manifest_dir / ATTRIBUTION, grid_file=eval_dir / GRID,
        scores_file=eval_dir / SCORES,
        training_config={"preset": spec.training.to_dict(),
                         "profile": dataclasses.asdict(profile),
                         "base_model_fingerprint": report["base_model"],
                         "training_run": {k: v for k, v in report.items() if k != "losses"}},
        review=review, recommendation=recommendation, model_card=card,
        export_metadata=spec_metadata(spec),
        dagster_runs=_upstream_runs(context, spec.name),
        inputs_fingerprint=read_json(workspace.stage_dir("raw_portfolio", spec.name)
                                     / INPUTS_FILE)["fingerprint"]))
    context.log.info(f"release {'written' if created else 'unchanged'}: {folder}")
    lora_file = next(folder.glob("*.safetensors"))
    return dg.MaterializeResult(
        metadata={"release_folder": dg.MetadataValue.path(str(folder)),
                  "lora_file": dg.MetadataValue.path(str(lora_file)),
                  "new_version": created, "checkpoint": review.checkpoint,
                  "weight": review.weight, "reviewer": review.reviewer,
                  "demo_review": review.demo,
                  "upstream_data_versions": dg.MetadataValue.json({
                      stage: data_version(path) for stage, path in workspace.tables(
                          spec.name, "license_manifest", "lora_checkpoints",
                          "xy_plot_evaluation").items()})},
        data_version=dg.DataVersion(sha256_file(folder / SUMS)[:16]),
    )


def _upstream_runs(context: dg.AssetExecutionContext, partition: str) -> dict[str, str]:
    runs = {}
    for name in UPSTREAM:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[partition]),
            limit=1).records
        if records:
            runs[name] = records[0].run_id
    runs["validated_release"] = context.run_id
    return runs
