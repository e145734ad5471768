"""Asset checks: three blocking gates stop everything downstream of their asset (the logic is
in gates.py, which the release page reads too); the release's own check audits the folder."""

import warnings

import dagster as dg

from bioart_pipeline.orchestration.assets.licensing import license_manifest
from bioart_pipeline.orchestration.assets.review import release_review
from bioart_pipeline.orchestration.gates import licence_gate, recommendation_gate, review_gate
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.release.audit import audit
from bioart_pipeline.release.bundle import existing_versions
from bioart_pipeline.release.trust import AuditTrust, studio_trust_anchor

# Partitioned asset checks are a Dagster preview feature, used knowingly.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


@dg.asset_check(asset=license_manifest, blocking=True, partitions_def=lora_partitions,
                description="Training never starts while a refused image is still included.")
def no_refused_image_trains(context: dg.AssetCheckExecutionContext, studio: StudioData
                            ) -> dg.AssetCheckResult:
    return licence_gate(studio, context.partition_key)


@dg.asset_check(asset="xy_plot_evaluation", blocking=True, partitions_def=lora_partitions,
                description="The recommendation exists and passes the spec's thresholds.")
def recommendation_passes(context: dg.AssetCheckExecutionContext, studio: StudioData
                          ) -> dg.AssetCheckResult:
    return recommendation_gate(studio, context.partition_key)


@dg.asset_check(asset=release_review, blocking=True, partitions_def=lora_partitions,
                description="A person approved a checkpoint of the current evaluation.")
def review_approves_release(context: dg.AssetCheckExecutionContext, studio: StudioData
                            ) -> dg.AssetCheckResult:
    return review_gate(studio, context.partition_key)


@dg.asset_check(asset="validated_release", partitions_def=lora_partitions,
                description="The published folder passes `bioart audit`: checksums, a signer "
                            "the studio's trust anchor vouches for, the LoRA's embedded "
                            "metadata and every training image traced back.")
def release_passes_audit(context: dg.AssetCheckExecutionContext, studio: StudioData
                         ) -> dg.AssetCheckResult:
    workspace = studio.workspace
    folder = existing_versions(workspace.releases_dir / context.partition_key)[-1]
    try:
        trust = AuditTrust(studio_trust_anchor(workspace))
    except ValueError as exc:
        return dg.AssetCheckResult(passed=False, description=f"{workspace.studio_file.name}: "
                                                             f"{exc}")
    report = audit(folder, workspace.data_dir, workspace.releases_dir, trust)
    return dg.AssetCheckResult(
        passed=report.ok,
        description=("; ".join(report.problems) if report.problems else
                     f"{folder.name}: every file, the signer ({report.signer['subject']}) and "
                     f"{len(report.images)} training image(s) verified"),
        metadata={"release": folder.name, "problems": len(report.problems),
                  "training_images": len(report.images)})
