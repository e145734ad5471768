"""Run one GPU job: `python -m bioart_pipeline.compute.entrypoint JOB.json OUT_DIR`.

Under Dagster Pipes it streams logs to the orchestrator; run by hand it logs to the console.
The job writes its outputs into OUT_DIR, its `done_file` last; a failure leaves FAILURE
there with the message a person should read. A training job with `processes` > 1 is
launched again as that many processes (torch.distributed.run, one per GPU); this process
relays what the first of them logs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.common.files import atomic_write_json, read_json
from bioart_pipeline.compute.jobs import GpuJob, load_job, run_job, title

# Written when the job fails, so the orchestrator shows the job's own message as the failure.
FAILURE = "failure.json"


class _ConsoleReporter:
    """Log lines on the console; `errors_only` for the processes of a training on several
    after the first, whose lines the first already reports."""

    def __init__(self, errors_only: bool = False) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        self._log = logging.getLogger("bioart.compute")
        self._log.setLevel(logging.ERROR if errors_only else logging.INFO)

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


class LaunchedJobFailed(Diagnosis):
    """A process of a job launched on several failed; the message is that process's."""


@contextlib.contextmanager
def reporting() -> Iterator[tuple[Any, Any]]:
    """(reporter, Pipes context) under Dagster Pipes; (console reporter, None) by hand."""
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    rank = _launched_rank()
    if rank >= 0 or not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield _ConsoleReporter(errors_only=rank > 0), None
        return
    with open_dagster_pipes() as pipes:
        yield _PipesReporter(pipes), pipes


def run(job_file: Path, out_dir: Path, reporter: Any) -> GpuJob:
    job = load_job(job_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FAILURE).unlink(missing_ok=True)
    reporter.log(f"{title(job.kind)} on {job.placement.describe()}")
    try:
        # Only training splits across processes; the other jobs run in one.
        if job.kind == "training" and job.placement.processes > 1 and _launched_rank() < 0:
            _launch(job_file, out_dir, job.placement.processes, reporter)
        else:
            run_job(job, out_dir, reporter)
    except Exception as exc:
        atomic_write_json(out_dir / FAILURE, failure_record(exc, job.kind))
        raise
    return job


def _launched_rank() -> int:
    """This process's rank when torch.distributed.run started it, else -1."""
    return int(os.environ["RANK"]) if "TORCHELASTIC_RUN_ID" in os.environ else -1


def _launch(job_file: Path, out_dir: Path, processes: int, reporter: Any) -> None:
    """The job as `processes` processes on this machine; their lines come back through
    `reporter` (the first process logs, the others only print errors)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", "-m", "bioart_pipeline.compute.entrypoint",
               str(job_file), str(out_dir)]
    # The processes report to this one, not to Dagster Pipes directly.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES_")}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as launched:
        for line in launched.stdout:
            reporter.log(line.rstrip())
    if launched.returncode:
        failure = out_dir / FAILURE
        raise LaunchedJobFailed(read_json(failure)["message"] if failure.exists() else
                                f"the {processes} training processes failed (exit code "
                                f"{launched.returncode}); their output is above")


def failure_record(exc: BaseException, kind: str = "") -> dict[str, str]:
    """The message a person sees: a diagnosis as it is, a crash with where it happened."""
    if isinstance(exc, Diagnosis):
        return {"reason": type(exc).__name__, "message": str(exc)}
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return {"reason": type(exc).__name__,
            "message": f"{title(kind)} failed: {type(exc).__name__}: {exc}{place}"}


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
