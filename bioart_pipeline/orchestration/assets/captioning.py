"""captions: one caption per usable image, trigger word first, with its origin."""


import dagster as dg

from bioart_pipeline.captioning.stage import CaptionsMissing, caption_images
from bioart_pipeline.captioning.terminology import load_terminology
from bioart_pipeline.common.files import read_table, write_table
from bioart_pipeline.orchestration.metadata import counts_md, stage_result, table_md
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData


@dg.asset(partitions_def=lora_partitions, group_name="data", kinds={"parquet"},
          deps=["preprocessed_images"])
def captions(context: dg.AssetExecutionContext, studio: StudioData) -> dg.MaterializeResult:
    """The artist's sidecar captions, assembled per LoRA type with the trigger word first."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    preprocessed = read_table(workspace.table("preprocessed_images", spec.name))
    terminology = load_terminology(workspace.terminology_file)
    try:
        table = caption_images(preprocessed, workspace.resolve_input, spec.trigger, spec.type,
                               terminology)
    except CaptionsMissing as exc:
        raise dg.Failure(str(exc)) from exc
    path = workspace.table("captions", spec.name)
    version = write_table(table, path)
    short = table[table["raw_caption"].str.split().str.len() < 5]
    return stage_result(path, version, {
        "captions": len(table),
        "origins": counts_md(table["origin"]),
        "suspiciously_short": table_md(short, ["path", "caption"]),
        "preview": table_md(table, ["path", "caption"], 15),
    }, upstream=workspace.tables(spec.name, "preprocessed_images"))
