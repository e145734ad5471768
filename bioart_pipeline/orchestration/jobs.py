"""Jobs: the whole chain for one LoRA partition, and the retraining part of it."""

import dagster as dg

from bioart_pipeline.orchestration.partitions import lora_partitions

lora_pipeline = dg.define_asset_job(
    name="lora_pipeline",
    selection=dg.AssetSelection.assets("validated_release").upstream(),
    partitions_def=lora_partitions,
    description="Portfolio to validated release for one LoRA spec.",
)

# What the retraining sensor and schedule launch: up to the XY plot. The review and the
# release stay a person's decision (release_review, then validated_release).
lora_retraining = dg.define_asset_job(
    name="lora_retraining",
    selection=dg.AssetSelection.assets("xy_plot_evaluation").upstream(),
    partitions_def=lora_partitions,
    description="Portfolio to XY evaluation for one LoRA whose inputs changed.",
)
