"""Sensors: new spec files in data/loras/ become partitions without a code change."""


import dagster as dg

from bioart_pipeline.orchestration.partitions import lora_partitions, spec_partition_keys
from bioart_pipeline.orchestration.resources import StudioData


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def lora_spec_sensor(context: dg.SensorEvaluationContext, studio: StudioData
                     ) -> dg.SensorResult:
    """Registers a partition for every new spec file."""
    known = set(context.instance.get_dynamic_partitions(lora_partitions.name))
    new = [key for key in spec_partition_keys(studio.workspace) if key not in known]
    if new:
        context.log.info(f"new LoRA specs: {new}")
    return dg.SensorResult(
        dynamic_partitions_requests=[lora_partitions.build_add_request(new)] if new else [],
    )
