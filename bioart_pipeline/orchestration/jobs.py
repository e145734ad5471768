"""Jobs: the whole chain for one LoRA partition."""

import dagster as dg

from bioart_pipeline.orchestration.partitions import lora_partitions

lora_pipeline = dg.define_asset_job(
    name="lora_pipeline",
    selection=dg.AssetSelection.groups("data", "model", "release"),
    partitions_def=lora_partitions,
    description="Portfolio to validated release for one LoRA spec.",
)
