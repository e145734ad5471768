"""One partition per LoRA spec file in data/loras/; new files become partitions on their own."""


import dagster as dg

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.specs import list_spec_files

lora_partitions = dg.DynamicPartitionsDefinition(name="lora_specs")
# Every stage in one asset group: the UI collapses the lineage into boxes when there are
# several groups; with one it opens on the whole pipeline, portfolio to release.
PIPELINE_GROUP = "portfolio_to_release"


def spec_partition_keys(workspace: Workspace) -> list[str]:
    return [path.stem for path in list_spec_files(workspace.specs_dir)]


def register_spec_partitions(instance: dg.DagsterInstance, workspace: Workspace,
                             skip: set[str] = frozenset()) -> list[str]:
    """Add a partition for every spec file not yet known (except `skip`); return the added
    keys."""
    known = set(instance.get_dynamic_partitions(lora_partitions.name)) | set(skip)
    new = [key for key in spec_partition_keys(workspace) if key not in known]
    if new:
        instance.add_dynamic_partitions(lora_partitions.name, new)
    return new
