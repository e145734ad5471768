"""Run one training job: `python -m bioart_pipeline.training.entrypoint JOB.json RUN_DIR`.

Under Dagster Pipes it streams logs and reports the materialization; run by hand it logs to
the console. Checkpoints and report.json land in RUN_DIR; report.json is written last, so a
run folder without it is an unfinished run, never a result.
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

from bioart_pipeline.common.files import atomic_write_json
from bioart_pipeline.training.guards import TrainingStopped
from bioart_pipeline.training.job import TrainingJob
from bioart_pipeline.training.loop import TrainingResult, train_lora

REPORT = "report.json"
# Written when the run fails, so the orchestrator shows the trainer's own message as the failure.
FAILURE = "failure.json"


class _ConsoleReporter:
    def __init__(self) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        self._log = logging.getLogger("bioart.training")

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


def run(job_file: Path, run_dir: Path, reporter: Any) -> dict[str, Any]:
    job = TrainingJob.load(job_file)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FAILURE).unlink(missing_ok=True)
    reporter.log(f"training {job.lora}: {len(job.images)} images, {job.preset.epochs} epochs, "
                 f"rank {job.preset.rank}, alpha {job.preset.alpha}")
    try:
        result = train_lora(job, run_dir, reporter)
    except Exception as exc:
        atomic_write_json(run_dir / FAILURE, failure_record(exc))
        raise
    report = _report(result)
    atomic_write_json(run_dir / REPORT, report)
    return report


def failure_record(exc: BaseException) -> dict[str, str]:
    """The message a person sees: a diagnosis as it is, a crash with where it happened."""
    if isinstance(exc, TrainingStopped):
        return {"reason": type(exc).__name__, "message": str(exc)}
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return {"reason": type(exc).__name__,
            "message": f"training failed: {type(exc).__name__}: {exc}{place}"}


def _report(result: TrainingResult) -> dict[str, Any]:
    return {"checkpoints": result.checkpoints, "losses": result.losses,
            "validation_losses": result.validation_losses, **result.details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("job", type=Path, help="training job JSON written by the orchestrator")
    parser.add_argument("run_dir", type=Path, help="folder for checkpoints and the report")
    args = parser.parse_args(argv)
    # Under Pipes the orchestrator reads FAILURE for the message; the exception travels too.
    # The asset's metadata comes from report.json, the file that also returns from remote runs.
    with reporting() as (reporter, _):
        try:
            run(args.job, args.run_dir, reporter)
        except TrainingStopped as exc:  # a diagnosis, not a crash: no traceback
            reporter.error(f"training stopped: {exc}")
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
