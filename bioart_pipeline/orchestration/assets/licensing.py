"""license_manifest: provenance, license verdict, sign-offs and duplicates per image;
ATTRIBUTION.md. A licence sign-off is recorded from its launch config."""


import dagster as dg
from pydantic import Field

from bioart_pipeline.common.files import atomic_write_text, read_table, write_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.licensing.manifest import (
    attribution_markdown,
    awaiting_signoff,
    build_manifest,
)
from bioart_pipeline.licensing.signoff import draft_signoff, load_signoffs, record_signoff
from bioart_pipeline.licensing.studio import load_studio
from bioart_pipeline.orchestration.metadata import (
    counts_md,
    path_value,
    stage_result,
    table_preview,
    table_value,
)
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.preprocessing.stage import NEAR_DUPLICATE_BITS
from bioart_pipeline.specs import LoraSpec

ATTRIBUTION = "ATTRIBUTION.md"


class SignOffConfig(dg.Config):
    """Launchpad fields of a licence sign-off. With `signer` empty nothing new is recorded (what
    scheduled runs do); the manifest applies the sign-offs recorded so far."""

    signer: str = Field("", description="Your name, as it goes into the release record.")
    images: list[str] = Field(
        default_factory=list,
        description="Paths of the images awaiting a sign-off (see `awaiting_signoff` in this "
                    "asset's metadata); empty: all of them.")
    note: str = Field("", description="Why these images may train: what was checked, by whom.")


@dg.asset(partitions_def=lora_partitions, group_name=PIPELINE_GROUP, kinds={"parquet"},
          deps=["captions", "raw_portfolio", "preprocessed_images"])
def license_manifest(context: dg.AssetExecutionContext, config: SignOffConfig,
                     studio: StudioData) -> dg.MaterializeResult:
    """One row per usable image: hashes, SPDX license, author, source, caption, the verdict
    for this LoRA's intended use, its sign-off, its duplicate group and why it does not train
    (refused, awaiting a sign-off, a duplicate of a better copy)."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    manifest = _manifest(workspace, spec)
    if config.signer:
        try:
            signoff = draft_signoff(spec.name, config.signer, config.note,
                                    awaiting_signoff(manifest), config.images or None)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        path = record_signoff(workspace.signoffs_dir, signoff)
        context.log.info(f"sign-off of {len(signoff.images)} image(s) recorded: {path.name}")
        manifest = _manifest(workspace, spec)
    folder = workspace.stage_dir("license_manifest", spec.name)
    version = write_table(manifest, workspace.table("license_manifest", spec.name))
    atomic_write_text(folder / ATTRIBUTION, attribution_markdown(manifest, spec.name))
    excluded = manifest[~manifest["included"]]
    if len(excluded):
        context.log.warning(f"{len(excluded)} image(s) EXCLUDED from {spec.name}: "
                            + "; ".join(f"{r.path} ({r.exclusion})"
                                        for r in excluded.itertuples()))
    signed = manifest[manifest["signed_off_by"] != ""]
    grouped = manifest[manifest["duplicate_group"] > 0].sort_values(["duplicate_group", "path"])
    return stage_result(workspace, workspace.table("license_manifest", spec.name), version, {
        "intended_use": spec.intended_use,
        "training_images": int(manifest["included"].sum()),
        "excluded": len(excluded),
        "excluded_images": table_value(excluded[["path", "license", "exclusion"]]),
        "awaiting_signoff": table_value(awaiting_signoff(manifest)[
            ["path", "license", "verdict_reason"]]),
        "signed_off": table_value(signed[["path", "license", "signed_off_by", "signed_off_at",
                                          "signoff_note"]]),
        "duplicate_groups": table_value(grouped[["duplicate_group", "path", "included",
                                                 "exclusion"]]),
        "verdicts": counts_md(manifest["verdict"]),
        "licenses": counts_md(manifest["license"]),
        "attribution": path_value(workspace, folder / ATTRIBUTION),
        "manifest": table_preview(manifest, ["path", "license", "author", "verdict", "included"]),
    }, upstream=workspace.tables(spec.name, "raw_portfolio", "preprocessed_images", "captions"))


def _manifest(workspace: Workspace, spec: LoraSpec):
    try:
        studio_file = load_studio(workspace.studio_file)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    return build_manifest(
        raw=read_table(workspace.table("raw_portfolio", spec.name)),
        preprocessed=read_table(workspace.table("preprocessed_images", spec.name)),
        captions=read_table(workspace.table("captions", spec.name)),
        intended_use=spec.intended_use, license_policy=spec.license_policy,
        studio=studio_file, signoffs=load_signoffs(workspace.signoffs_dir, spec.name),
        near_duplicate_bits=int(spec.preprocessing.get("near_duplicate_bits",
                                                       NEAR_DUPLICATE_BITS)),
    )
