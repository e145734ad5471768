"""raw_portfolio: every image file of the LoRA's portfolio folders, with its provenance."""


import dagster as dg

from bioart_pipeline.common.files import atomic_write_json, write_table
from bioart_pipeline.orchestration.metadata import counts_md, stage_result, table_preview
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.portfolio.changes import INPUTS_FILE, hash_cache, inputs_fingerprint
from bioart_pipeline.portfolio.ingest import DEFAULT_MAX_PIXELS, PortfolioFolder, scan_portfolio


@dg.asset(partitions_def=lora_partitions, group_name=PIPELINE_GROUP, kinds={"parquet"})
def raw_portfolio(context: dg.AssetExecutionContext, studio: StudioData) -> dg.MaterializeResult:
    """Inventory of the studio's images (read-only): hash, format, size, license sidecar and
    embedded rights metadata."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    folders = [PortfolioFolder(workspace.resolve_input(p), "train") for p in spec.portfolio]
    folders += [PortfolioFolder(workspace.resolve_input(p), "regularization")
                for p in spec.regularization]
    table = scan_portfolio(folders, display=workspace.display_path,
                           max_pixels=int(spec.preprocessing.get("max_pixels",
                                                                 DEFAULT_MAX_PIXELS)))
    path = workspace.table("raw_portfolio", spec.name)
    version = write_table(table, path)
    # What the retraining schedule compares with the latest release's copy of this file.
    cache = hash_cache(workspace)
    fingerprint = inputs_fingerprint(workspace, spec, cache)
    cache.save()
    atomic_write_json(path.parent / INPUTS_FILE, {"fingerprint": fingerprint})
    unusable = table[table["status"] != "ok"]
    context.log.info(f"{len(table)} image files, {len(unusable)} unusable")
    return stage_result(workspace, path, version, {
        "images": len(table),
        "inputs_fingerprint": fingerprint,
        "unusable": len(unusable),
        "licenses": counts_md(table["license"].replace("", "(none)")),
        "unusable_files": table_preview(unusable, ["path", "status"]),
        "preview": table_preview(table, ["path", "width", "height", "license", "author"], 12),
    })
