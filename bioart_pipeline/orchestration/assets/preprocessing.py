"""preprocessed_images: decoded, flattened, bucketed and filtered images (content-addressed)."""


import dagster as dg
from PIL import Image

from bioart_pipeline.common.charts import markdown_image
from bioart_pipeline.common.files import read_table, write_table
from bioart_pipeline.orchestration.metadata import counts_md, stage_result, table_preview
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.preprocessing.stage import (
    PreprocessOptions,
    preprocess_portfolio,
    preprocessed_file,
)
from bioart_pipeline.specs import LoraSpec


@dg.asset(partitions_def=lora_partitions, group_name=PIPELINE_GROUP, kinds={"parquet"},
          deps=["raw_portfolio"])
def preprocessed_images(context: dg.AssetExecutionContext, studio: StudioData
                        ) -> dg.MaterializeResult:
    """Images composited onto the spec's background, resized into aspect-ratio buckets;
    corrupt, tiny and blurry files quarantined with the reason. Duplicates are grouped later,
    in license_manifest, where their licences are known."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    profile = spec.model_profile
    options = PreprocessOptions(background=spec.background, resolution=profile.resolution,
                                bucket_step=profile.bucket_step,
                                **{"min_side": profile.min_side, **_filters(spec)})
    raw = read_table(workspace.table("raw_portfolio", spec.name))
    cache = workspace.cache_dir / "preprocessed"
    result = preprocess_portfolio(raw, workspace.resolve_input, cache, options)
    table = result.table
    path = workspace.table("preprocessed_images", spec.name)
    version = write_table(table, path)
    ok, quarantined = table[table["status"] == "ok"], table[table["status"] != "ok"]
    context.log.info(f"{len(ok)} usable, {len(quarantined)} quarantined; "
                     f"{result.processed} processed, {result.reused} reused from cache")
    buckets = ok["bucket_width"].astype(str) + "x" + ok["bucket_height"].astype(str)
    return stage_result(workspace, path, version, {
        "usable": len(ok), "quarantined": len(quarantined),
        "processed": result.processed, "reused_from_cache": result.reused,
        "buckets": counts_md(buckets),
        "quarantine": table_preview(quarantined, ["path", "status"]),
        "contact_sheet": dg.MetadataValue.md(
            markdown_image(_contact_sheet([preprocessed_file(cache, k) for k in ok["key"]]),
                           "preprocessed images")),
    }, upstream=workspace.tables(spec.name, "raw_portfolio"))


def _filters(spec: LoraSpec) -> dict:
    """The spec's preprocessing overrides this stage applies; the license manifest applies
    near_duplicate_bits, once every licence is known."""
    return {k: v for k, v in spec.preprocessing.items() if k != "near_duplicate_bits"}


def _contact_sheet(files: list, columns: int = 8, cell: int = 96) -> Image.Image:
    files = files[:32]
    rows = max(1, -(-len(files) // columns))
    sheet = Image.new("RGB", (columns * cell, rows * cell), "#dddddd")
    for index, file in enumerate(files):
        with Image.open(file) as image:
            thumb = image.convert("RGB")
            thumb.thumbnail((cell - 4, cell - 4))
        sheet.paste(thumb, ((index % columns) * cell + 2, (index // columns) * cell + 2))
    return sheet
