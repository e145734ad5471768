"""Runs launched through the Dagster instance for the code location, as the UI launches them:
they show in the job's run list and the timeline, and can be re-executed from the UI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._utils.error import SerializableErrorInfo

# workspace.yaml's code location: runs launched here belong to the location the UI loads.
LOCATION = "bioart_pipeline"
DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE = "bioart_pipeline.definitions", "defs"
DONE = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED}


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The code location served by a code server process, as `dagster dev` serves it."""
    target = ModuleTarget(module_name=DEFINITIONS_MODULE, attribute=DEFINITIONS_ATTRIBUTE,
                          working_directory=None, location_name=LOCATION)
    with WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as workspace:
        errors = workspace.create_request_context().get_code_location_error(LOCATION)
        if errors:
            raise RuntimeError(f"the code location does not load: {errors.message}")
        yield workspace


def launch(workspace: WorkspaceProcessContext, job_name: str, partition: str,
           assets: Sequence[str], run_config: dict | None = None,
           tags: dict[str, str] | None = None) -> str:
    """Start a run of `assets` (and their checks) for one partition; returns its run id."""
    request = workspace.create_request_context()
    location = request.get_code_location(LOCATION)
    (repository,) = location.get_repositories().values()
    selector = JobSubsetSelector(location_name=LOCATION, repository_name=repository.name,
                                 job_name=job_name, op_selection=None,
                                 asset_selection=[dg.AssetKey(a) for a in assets])
    job = location.get_job(selector)
    run_config = run_config or {}
    plan = location.get_execution_plan(job, run_config, step_keys_to_execute=None,
                                       known_state=None, instance=request.instance)
    run = request.instance.create_run(
        job_name=job_name, run_id=None, run_config=run_config,
        resolved_op_selection=None, step_keys_to_execute=None, op_selection=None,
        status=dg.DagsterRunStatus.NOT_STARTED, root_run_id=None, parent_run_id=None,
        tags={**job.tags, **(tags or {}), "dagster/partition": partition},
        job_snapshot=job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=job.parent_job_snapshot,
        remote_job_origin=job.get_remote_origin(), job_code_origin=job.get_python_origin(),
        asset_selection=frozenset(selector.asset_selection or ()),
        asset_check_selection=None, asset_graph=repository.asset_graph)
    # Started now, not queued: the queue is the daemon's, which `dagster dev` runs and a
    # one-command demo does not.
    request.instance.launch_run(run.run_id, request)
    return run.run_id


def follow(instance: dg.DagsterInstance, run_id: str, echo: Callable[[str], None],
           poll_seconds: float = 1.0) -> dg.DagsterRunStatus:
    """Wait for the run to end, echoing its log lines of INFO and up, materializations, check
    results and failures as they arrive."""
    cursor = None
    while True:
        status = instance.get_run_by_id(run_id).status
        while True:
            page = instance.get_records_for_run(run_id, cursor=cursor)
            cursor = page.cursor
            for record in page.records:
                line = _describe(record.event_log_entry)
                if line:
                    echo(line)
            if not page.has_more:
                break
        if status in DONE:
            return status
        time.sleep(poll_seconds)


def _describe(entry: dg.EventLogEntry) -> str | None:
    event = entry.dagster_event
    step = f"{entry.step_key}: " if entry.step_key else ""
    if event is None:
        return f"{step}{entry.user_message}" if entry.level >= logging.INFO else None
    if event.is_step_materialization:
        return f"{step}materialized"
    if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        check = event.asset_check_evaluation_data
        return (f"check {check.check_name}: {'passed' if check.passed else 'FAILED'}"
                + (f" ({check.description})" if check.description else ""))
    if event.is_step_failure:
        return f"{step}FAILED: {_innermost(event.step_failure_data.error)}"
    return f"run failed: {event.message}" if event.is_run_failure else None


def _innermost(error: SerializableErrorInfo) -> str:
    """The message of the exception that started it (Dagster wraps a step's in its own)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
