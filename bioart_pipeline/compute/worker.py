"""The GPU worker on a cluster: `python -m bioart_pipeline.compute.worker STORE JOB_ID`.

It downloads the encrypted inputs from the transfer store, decrypts them into a private
temporary folder, runs the job (training, XY plot or captioning) with the same code as a
local run, encrypts and uploads the output folder, reports every output file's sha256
through Dagster Pipes, and removes the temporary folder whatever happens (success, failure,
or SIGTERM from a cancelled job).
Needs BIOART_TRANSFER_KEY in its environment (the cluster's, never the job's arguments).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bioart_pipeline.common.errors import Diagnosis
from bioart_pipeline.common.files import read_json
from bioart_pipeline.compute.crypto import transfer_key
from bioart_pipeline.compute.entrypoint import FAILURE, failure_record, reporting, run
from bioart_pipeline.compute.transfer import (
    INPUTS,
    OUTPUTS,
    TransferStore,
    pack_outputs,
    unpack_inputs,
)

# Where the private temporary folder goes (default: the system's temp folder), and a lasting
# models folder (default: inside the temporary folder, rebuilt each job).
TMPDIR_VARIABLE = "BIOART_WORKER_TMPDIR"
MODELS_VARIABLE = "BIOART_WORKER_MODELS_DIR"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("store", help="transfer store URI shared with the studio")
    parser.add_argument("job_id", help="the job's folder in the store")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with reporting() as (reporter, pipes):
        key = transfer_key()
        workdir = Path(tempfile.mkdtemp(prefix="bioart-worker-",
                                        dir=os.environ.get(TMPDIR_VARIABLE)))
        try:
            return _work(TransferStore(args.store), args.job_id, workdir, key, reporter,
                         pipes)
        finally:
            left: list[str] = []  # what could not be removed is said, not hidden
            shutil.rmtree(workdir, onerror=lambda _, path, exc: left.append(
                f"{Path(path).name} ({exc[1]})"))
            reporter.log("worker: temporary folder removed" if not left else
                         f"worker: could not remove from the temporary folder: {left[:5]}")


def _work(store: TransferStore, job_id: str, workdir: Path, key: bytes, reporter: Any,
          pipes: Any) -> int:
    archive = workdir / "inputs.tar"
    size = store.download(job_id, INPUTS, archive, key)
    models = Path(os.environ.get(MODELS_VARIABLE, workdir / "models"))
    job_file = unpack_inputs(archive, workdir / "inputs", models)
    archive.unlink()
    reporter.log(f"worker: {size / 1e6:.1f} MB of inputs decrypted into a private folder")
    out_dir = workdir / "out"
    try:
        run(job_file, out_dir, reporter)
    except Exception as exc:
        written = out_dir / FAILURE
        _send(pipes, {"failure": read_json(written) if written.exists()
                      else failure_record(exc)})
        if isinstance(exc, Diagnosis):
            reporter.error(f"stopped: {exc}")
            return 2
        raise
    outputs = workdir / "outputs.tar"
    hashes = pack_outputs(out_dir, outputs)
    stored = store.upload(outputs, job_id, OUTPUTS, key)
    reporter.log(f"worker: {len(hashes)} output file(s) encrypted and uploaded "
                 f"({stored / 1e6:.1f} MB)")
    _send(pipes, {"outputs": hashes})
    return 0


def _send(pipes: Any, message: dict) -> None:
    if pipes is not None:
        pipes.report_custom_message(message)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup above


if __name__ == "__main__":
    sys.exit(main())
