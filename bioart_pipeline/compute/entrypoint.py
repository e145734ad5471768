"""Run one GPU job: `python -m bioart_pipeline.compute.entrypoint JOB.json OUT_DIR`.

Under Dagster Pipes it streams logs to the orchestrator; run by hand it logs to the console.
The job writes its outputs into OUT_DIR, its `done_file` last; a failure leaves FAILURE
there with the message a person should read.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.common.files import atomic_write_json
from bioart_pipeline.compute.jobs import GpuJob, load_job, run_job

# Written when the job fails, so the orchestrator shows the job's own message as the failure.
FAILURE = "failure.json"
# What each kind of job is called in a failure message.
TITLES = {"training": "training", "xy_plot": "XY plot", "captioning": "captioning"}


class _ConsoleReporter:
    def __init__(self) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        self._log = logging.getLogger("bioart.compute")

    def log(self, message: str) -> None:
        self._log.info(message)

    def error(self, message: str) -> None:
        print(message, file=sys.stderr)


class _PipesReporter:
    def __init__(self, pipes: Any) -> None:
        self._pipes = pipes

    def log(self, message: str) -> None:
        self._pipes.log.info(message)

    def error(self, message: str) -> None:
        self._pipes.log.error(message)


@contextlib.contextmanager
def reporting() -> Iterator[tuple[Any, Any]]:
    """(reporter, Pipes context) under Dagster Pipes; (console reporter, None) by hand."""
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield _ConsoleReporter(), None
        return
    with open_dagster_pipes() as pipes:
        yield _PipesReporter(pipes), pipes


def run(job_file: Path, out_dir: Path, reporter: Any) -> GpuJob:
    job = load_job(job_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FAILURE).unlink(missing_ok=True)
    reporter.log(f"{TITLES[job.kind]} on {job.placement.describe()}")
    try:
        run_job(job, out_dir, reporter)
    except Exception as exc:
        atomic_write_json(out_dir / FAILURE, failure_record(exc, job.kind))
        raise
    return job


def failure_record(exc: BaseException, kind: str = "") -> dict[str, str]:
    """The message a person sees: a diagnosis as it is, a crash with where it happened."""
    if isinstance(exc, Diagnosis):
        return {"reason": type(exc).__name__, "message": str(exc)}
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return {"reason": type(exc).__name__,
            "message": f"{TITLES.get(kind, 'the job')} failed: {type(exc).__name__}: {exc}{place}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("job", type=Path, help="job JSON written by the orchestrator")
    parser.add_argument("out_dir", type=Path, help="folder for the job's outputs")
    args = parser.parse_args(argv)
    # Under Pipes the orchestrator reads FAILURE for the message; the exception travels too.
    with reporting() as (reporter, _):
        try:
            run(args.job, args.out_dir, reporter)
        except Diagnosis as exc:  # not a crash: no traceback
            reporter.error(f"stopped: {exc}")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
