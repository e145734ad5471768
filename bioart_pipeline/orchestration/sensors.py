"""Retraining: a sensor reacts to changed inputs, a schedule catches up on changes since the
last release. Both launch `lora_retraining` (up to the XY plot) for the affected partitions
only; the review and the release stay a person's decision."""


import json

import dagster as dg

from bioart_pipeline.orchestration.jobs import lora_retraining
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.portfolio.changes import current_fingerprints
from bioart_pipeline.release.bundle import latest_release_info


@dg.sensor(job=lora_retraining, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every minute: registers a partition for each new spec file in "
                       "data/loras/, and retrains (up to the XY plot) each LoRA whose inputs "
                       "changed: spec, terminology, studio file, images, sidecars, sign-offs.")
def retraining_sensor(context: dg.SensorEvaluationContext, studio: StudioData
                      ) -> dg.SensorResult:
    """Registers a partition for every new spec file, and requests a run for each partition
    whose inputs (portfolio/changes.py) changed since the last evaluation.
    The first evaluation only records the current state: starting the UI launches nothing."""
    fingerprints, problems = current_fingerprints(studio.workspace)
    for key, problem in problems.items():
        context.log.warning(f"{key}: not watched: {problem}")
    known = set(context.instance.get_dynamic_partitions(lora_partitions.name))
    new = sorted(key for key in fingerprints if key not in known)
    seen = json.loads(context.cursor) if context.cursor else None
    changed = [] if seen is None else [k for k, fp in fingerprints.items() if seen.get(k) != fp]
    if changed:
        context.log.info(f"inputs changed: {changed}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=k, run_key=f"{k}:{fingerprints[k]}")
                      for k in changed],
        dynamic_partitions_requests=[lora_partitions.build_add_request(new)] if new else [],
        cursor=json.dumps({**(seen or {}), **fingerprints}, sort_keys=True),
    )


def retraining_schedule(cron: str) -> dg.ScheduleDefinition:
    """Off until turned on in the UI: retrains each released partition whose inputs differ
    from those of its latest release (never-released partitions are the sensor's)."""

    @dg.schedule(job=lora_retraining, cron_schedule=cron,
                 default_status=dg.DefaultScheduleStatus.STOPPED,
                 description="Off until turned on: retrains (up to the XY plot) each released "
                             "LoRA whose inputs differ from those of its latest release "
                             f"(cron {cron!r}, BIOART_RETRAIN_CRON).")
    def lora_retraining_schedule(context: dg.ScheduleEvaluationContext, studio: StudioData
                                 ) -> list[dg.RunRequest] | dg.SkipReason:
        workspace = studio.workspace
        fingerprints, problems = current_fingerprints(workspace)
        for key, problem in problems.items():
            context.log.warning(f"{key}: skipped: {problem}")
        stale = []
        for key, fingerprint in fingerprints.items():
            release = latest_release_info(workspace.releases_dir, key)
            if release and release.get("inputs_fingerprint") != fingerprint:
                stale.append(key)
        if not stale:
            return dg.SkipReason("no released LoRA has changed inputs")
        context.log.info(f"inputs changed since the last release: {stale}")
        return [dg.RunRequest(partition_key=key) for key in stale]

    return lora_retraining_schedule
