"""The two ways a training job runs, behind the TrainingCompute resource.

- local: the training entrypoint in a child process through Dagster Pipes.
- ray: the worker as a Ray job (Ray's job submission API), its logs and messages streamed
  back through Pipes (dagster-ray's job-log reader), its inputs and outputs encrypted in the
  transfer store. Ray queues jobs until the GPUs they ask for are free, so many partitions
  can train at once on a multi-GPU cluster.
"""

import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

from bioart_pipeline.common.files import read_json
from bioart_pipeline.compute.crypto import TransferKeyError, transfer_key
from bioart_pipeline.compute.transfer import (
    INPUTS,
    OUTPUTS,
    TransferStore,
    pack_inputs,
    unpack_outputs,
)
from bioart_pipeline.training.entrypoint import FAILURE
from bioart_pipeline.training.job import TrainingJob


def train_locally(context: dg.AssetExecutionContext, job_file: Path, run_dir: Path) -> None:
    command = [sys.executable, "-m", "bioart_pipeline.training.entrypoint",
               str(job_file), str(run_dir)]
    try:
        dg.PipesSubprocessClient().run(command=command, context=context)
    except Exception as exc:
        failure = run_dir / FAILURE
        if failure.exists():  # the trainer's own message, not "process failed with code 1"
            raise dg.Failure(description=read_json(failure)["message"]) from exc
        raise


class RayTraining:
    """One training job on a Ray cluster, from encrypted upload to verified download."""

    def __init__(self, address: str, store: str, gpus: float, cpus: float, python: str):
        if not address or not store:
            raise dg.Failure("the ray backend needs BIOART_RAY_ADDRESS (the cluster's dashboard "
                             "URL, e.g. http://127.0.0.1:8265) and BIOART_TRANSFER_STORE "
                             "(s3://..., gs://... or a folder both sides reach)")
        self.address, self.gpus, self.cpus, self.python = address, gpus, cpus, python
        self.store = TransferStore(store)
        try:
            self.key = transfer_key()
        except TransferKeyError as exc:
            raise dg.Failure(str(exc)) from exc

    def train(self, context: dg.AssetExecutionContext, job: TrainingJob, run_dir: Path) -> None:
        job_id = f"bioart-{job.lora}-{run_dir.name}-{uuid.uuid4().hex[:8]}"
        try:
            self._upload(context, job, run_dir, job_id)
            messages = self._run(context, job_id)
            self._download(context, run_dir, job_id, messages)
        finally:
            self.store.remove(job_id)  # nothing of the studio's stays in the store

    def _upload(self, context, job: TrainingJob, run_dir: Path, job_id: str) -> None:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=run_dir.parent) as tmp:
            archive = Path(tmp) / "inputs.tar"
            shipped = pack_inputs(job, archive)
            size = self.store.upload(archive, job_id, INPUTS, self.key)
        context.log.info(f"inputs for Ray job {job_id}: {shipped['latents']} cached latents, "
                         f"{shipped['images']} images, captions and config; encrypted, "
                         f"{size / 1e6:.1f} MB to the transfer store in "
                         f"{time.perf_counter() - started:.1f} s")

    def _run(self, context, job_id: str) -> list[dict]:
        from dagster_ray.core.pipes import PipesRayJobMessageReader
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(self.address)
        entrypoint = shlex.join([self.python, "-m", "bioart_pipeline.compute.worker",
                                 self.store.uri, job_id])
        with dg.open_pipes_session(context=context, message_reader=PipesRayJobMessageReader(),
                                   context_injector=dg.PipesEnvContextInjector()) as session:
            client.submit_job(
                entrypoint=entrypoint, submission_id=job_id,
                runtime_env={"env_vars": session.get_bootstrap_env_vars()},
                entrypoint_num_gpus=self.gpus, entrypoint_num_cpus=self.cpus,
                metadata={"dagster_run_id": context.run_id,
                          "partition": context.partition_key})
            session.report_launched({"extras": {"ray_job_id": job_id,
                                                "ray_address": client.get_address()}})
            context.log.info(f"Ray job {job_id} submitted to {client.get_address()} "
                             f"({self.gpus:g} GPU, {self.cpus:g} CPU)")
            try:
                status = _wait(client, job_id)
            except dg.DagsterExecutionInterruptedError:
                context.log.warning(f"run cancelled: stopping Ray job {job_id}")
                client.stop_job(job_id)
                raise
        messages = session.get_custom_messages()
        failure = next((m["failure"] for m in messages if "failure" in m), None)
        if failure:
            raise dg.Failure(description=failure["message"])
        if status != "SUCCEEDED":
            raise dg.Failure(description=f"Ray job {job_id} {status.lower()}: "
                                         f"{client.get_job_info(job_id).message}")
        return messages

    def _download(self, context, run_dir: Path, job_id: str, messages: list[dict]) -> None:
        expected = next(m["checkpoints"] for m in messages if "checkpoints" in m)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=run_dir.parent) as tmp:
            archive = Path(tmp) / "outputs.tar"
            size = self.store.download(job_id, OUTPUTS, archive, self.key)
            unpack_outputs(archive, run_dir, expected)
        context.log.info(f"{len(expected)} checkpoint(s) back from Ray job {job_id}, sha256 "
                         f"verified ({size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s)")


def _wait(client, job_id: str, poll_seconds: float = 1.0) -> str:
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return str(status.value)
        time.sleep(poll_seconds)
