"""license_manifest: provenance and license verdict per image; ATTRIBUTION.md."""


import dagster as dg

from bioart_pipeline.common.files import atomic_write_text, read_table, write_table
from bioart_pipeline.licensing.manifest import attribution_markdown, build_manifest
from bioart_pipeline.orchestration.metadata import counts_md, stage_result, table_md
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData

ATTRIBUTION = "ATTRIBUTION.md"


@dg.asset(partitions_def=lora_partitions, group_name="data", kinds={"parquet"},
          deps=["captions", "raw_portfolio", "preprocessed_images"])
def license_manifest(context: dg.AssetExecutionContext, studio: StudioData
                     ) -> dg.MaterializeResult:
    """One row per usable image: hashes, SPDX license, author, source, caption and the
    verdict for this LoRA's intended use. Refused images are excluded (or fatal, per spec)."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    manifest = build_manifest(
        raw=read_table(workspace.table("raw_portfolio", spec.name)),
        preprocessed=read_table(workspace.table("preprocessed_images", spec.name)),
        captions=read_table(workspace.table("captions", spec.name)),
        intended_use=spec.intended_use, license_policy=spec.license_policy,
    )
    folder = workspace.stage_dir("license_manifest", spec.name)
    version = write_table(manifest, workspace.table("license_manifest", spec.name))
    atomic_write_text(folder / ATTRIBUTION, attribution_markdown(manifest, spec.name))
    excluded = manifest[~manifest["included"]]
    if len(excluded):
        context.log.warning(f"{len(excluded)} image(s) EXCLUDED from {spec.name} by license: "
                            + "; ".join(f"{r.path} ({r.verdict_reason})"
                                        for r in excluded.itertuples()))
    return stage_result(workspace.table("license_manifest", spec.name), version, {
        "intended_use": spec.intended_use,
        "training_images": int(manifest["included"].sum()),
        "excluded": len(excluded),
        "excluded_images": table_md(excluded, ["path", "license", "verdict_reason"]),
        "verdicts": counts_md(manifest["verdict"]),
        "licenses": counts_md(manifest["license"]),
        "attribution": dg.MetadataValue.path(str(folder / ATTRIBUTION)),
        "manifest": table_md(manifest, ["path", "license", "author", "verdict", "included"]),
    }, upstream=workspace.tables(spec.name, "raw_portfolio", "preprocessed_images", "captions"))
