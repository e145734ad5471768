"""The compute resource: where every GPU job runs (training, the XY plot, captioning).

One interface, `GpuCompute.run(context, job, out_dir)`, two implementations, picked once in
definitions.py:
- LocalCompute: the job in a child process through Dagster Pipes (crash isolation, GPU
  memory released after each job); the `gpu` pool keeps one GPU job on the card at a time.
- RayCompute: the job on a Ray cluster (Ray's job submission API), its logs and messages
  streamed back through Pipes (dagster-ray's job-log reader), its inputs and outputs
  encrypted in the transfer store and every returned file checked against the sha256 the
  worker reported. Ray queues jobs until the GPUs they ask for are free, so many partitions
  can run at once on a multi-GPU cluster.
Nothing here loads a model: the Dagster process only writes jobs and reads their outputs.
"""

from __future__ import annotations

import abc
import shlex
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

from bioart_pipeline.common.files import read_json
from bioart_pipeline.compute.crypto import TransferKeyError, transfer_key
from bioart_pipeline.compute.entrypoint import FAILURE
from bioart_pipeline.compute.jobs import GpuJob, save_job, title
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.compute.transfer import (
    INPUTS,
    OUTPUTS,
    TransferStore,
    pack_inputs,
    unpack_outputs,
)
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions

JOB_FILE = "job.json"  # kept beside the outputs: what exactly ran


class GpuCompute(dg.ConfigurableResource):
    """`device` (auto | cuda | cpu) and `dtype` (auto | bfloat16 | float16 | float32) go
    with every job and are resolved where it runs; `processes` > 1 trains one LoRA on that
    many GPUs of the machine that runs it (see compute/placement.py)."""

    device: str = "auto"
    dtype: str = "auto"
    processes: int = 1

    @property
    def placement(self) -> Placement:
        return Placement(self.device, self.dtype, self.processes)

    @property
    @abc.abstractmethod
    def pool(self) -> str | None:
        """The Dagster pool of the GPU assets: one GPU job at a time, or the cluster's."""

    @abc.abstractmethod
    def run(self, context: dg.AssetExecutionContext, job: GpuJob, out_dir: Path) -> None:
        """Run `job`; on success its outputs are in `out_dir` with `job.done_file` last."""

    def run_once(self, context: dg.AssetExecutionContext, job: GpuJob, out_dir: Path,
                 display_dir: str) -> bool:
        """Run `job` unless `out_dir` already holds its finished outputs (its folder is keyed
        by everything the job reads); returns whether they were reused."""
        if (out_dir / job.done_file).exists():
            context.log.info(f"identical inputs already ran as {title(job.kind)} in "
                             f"{display_dir}: reusing it")
            return True
        self.run(context, job, out_dir)
        return False


def gpu_asset(name: str, pool: str | None, deps: list[str], kinds: set[str]):
    """The decorator of a stage whose work runs as jobs on the compute resource: a partition
    per LoRA, in the pipeline's group and the resource's pool."""
    return dg.asset(name=name, partitions_def=lora_partitions, group_name=PIPELINE_GROUP,
                    kinds=kinds, deps=deps, pool=pool)


class LocalCompute(GpuCompute):
    """This machine's GPU (or CPU), one job at a time through the `gpu` pool."""

    @property
    def pool(self) -> str | None:
        return "gpu"

    def run(self, context: dg.AssetExecutionContext, job: GpuJob, out_dir: Path) -> None:
        job_file = save_job(job, out_dir / JOB_FILE)
        command = [sys.executable, "-m", "bioart_pipeline.compute.entrypoint", str(job_file),
                   str(out_dir)]
        try:
            dg.PipesSubprocessClient().run(command=command, context=context)
        except Exception as exc:
            failure = out_dir / FAILURE
            if failure.exists():  # the job's own message, not "process failed with code 1"
                raise dg.Failure(description=read_json(failure)["message"]) from exc
            raise


class RayCompute(GpuCompute):
    """A job on the Ray cluster at `ray_address` (its dashboard URL) asking for
    `gpus_per_job` GPUs; inputs and outputs travel encrypted through `transfer_store` with
    the key in BIOART_TRANSFER_KEY (an environment variable on both sides, never
    configuration). `worker_python` is the cluster's Python with bioart_pipeline installed."""

    ray_address: str = ""
    transfer_store: str = ""
    gpus_per_job: float = 1.0
    cpus_per_job: float = 1.0
    worker_python: str = "python"

    @property
    def pool(self) -> str | None:
        return None  # Ray queues jobs by the GPUs they ask for

    def run(self, context: dg.AssetExecutionContext, job: GpuJob, out_dir: Path) -> None:
        if not self.ray_address or not self.transfer_store:
            raise dg.Failure("the ray backend needs BIOART_RAY_ADDRESS (the cluster's dashboard "
                             "URL, e.g. http://127.0.0.1:8265) and BIOART_TRANSFER_STORE "
                             "(s3://..., gs://... or a folder both sides reach)")
        if self.processes > 1 and self.device != "cpu" and self.processes > self.gpus_per_job:
            raise dg.Failure(f"BIOART_PROCESSES={self.processes} training processes need as many "
                             f"GPUs per job; BIOART_RAY_GPUS is {self.gpus_per_job:g}")
        try:
            key = transfer_key()
        except TransferKeyError as exc:
            raise dg.Failure(str(exc)) from exc
        store = TransferStore(self.transfer_store)
        save_job(job, out_dir / JOB_FILE)
        job_id = f"bioart-{job.kind}-{out_dir.name}-{uuid.uuid4().hex[:8]}"
        try:
            _upload(context, store, key, job, out_dir, job_id)
            messages = self._submit(context, job, job_id)
            _download(context, store, key, job, out_dir, job_id, messages)
        finally:
            store.remove(job_id)  # nothing of the studio's stays in the store

    def _submit(self, context: dg.AssetExecutionContext, job: GpuJob, job_id: str
                ) -> list[dict]:
        from dagster_ray.core.pipes import PipesRayJobMessageReader
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(self.ray_address)
        entrypoint = shlex.join([self.worker_python, "-m", "bioart_pipeline.compute.worker",
                                 self.transfer_store, job_id])
        with dg.open_pipes_session(context=context, message_reader=PipesRayJobMessageReader(),
                                   context_injector=dg.PipesEnvContextInjector()) as session:
            client.submit_job(
                entrypoint=entrypoint, submission_id=job_id,
                runtime_env={"env_vars": session.get_bootstrap_env_vars()},
                entrypoint_num_gpus=self.gpus_per_job, entrypoint_num_cpus=self.cpus_per_job,
                metadata={"dagster_run_id": context.run_id, "kind": job.kind,
                          "partition": context.partition_key})
            session.report_launched({"extras": {"ray_job_id": job_id,
                                                "ray_address": client.get_address()}})
            context.log.info(f"{title(job.kind)} submitted to Ray at {client.get_address()} "
                             f"as {job_id} ({self.gpus_per_job:g} GPU, "
                             f"{self.cpus_per_job:g} CPU)")
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


def _upload(context: dg.AssetExecutionContext, store: TransferStore, key: bytes, job: GpuJob,
            out_dir: Path, job_id: str) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        archive = Path(tmp) / "inputs.tar"
        shipped = pack_inputs(job, archive)
        size = store.upload(archive, job_id, INPUTS, key)
    context.log.info(f"inputs for Ray job {job_id}: the job and {shipped} file(s); encrypted, "
                     f"{size / 1e6:.1f} MB to the transfer store in "
                     f"{time.perf_counter() - started:.1f} s")


def _download(context: dg.AssetExecutionContext, store: TransferStore, key: bytes,
              job: GpuJob, out_dir: Path, job_id: str, messages: list[dict]) -> None:
    expected = next(m["outputs"] for m in messages if "outputs" in m)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as tmp:
        archive = Path(tmp) / "outputs.tar"
        size = store.download(job_id, OUTPUTS, archive, key)
        unpack_outputs(archive, out_dir, expected, job.done_file)
    context.log.info(f"{len(expected)} output file(s) back from Ray job {job_id}, sha256 "
                     f"verified ({size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s)")


def _wait(client, job_id: str, poll_seconds: float = 1.0) -> str:
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return str(status.value)
        time.sleep(poll_seconds)
