"""Resources: where the data lives, the captioner, tracking, and the compute that trains."""


from collections.abc import Callable
from pathlib import Path

import dagster as dg

from bioart_pipeline.captioning.florence import CaptionerSettings
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.common.tracking import Tracker
from bioart_pipeline.evaluation.clip_scores import ClipScorer, ClipUnavailable
from bioart_pipeline.orchestration.compute import RayTraining, train_locally
from bioart_pipeline.specs import LoraSpec, load_spec
from bioart_pipeline.training.job import TrainingJob


class StudioData(dg.ConfigurableResource):
    """The studio's data folder (read-only inputs) and the generated outputs folder."""

    data_dir: str
    outputs_dir: str

    @property
    def workspace(self) -> Workspace:
        return Workspace(Path(self.data_dir).resolve(), Path(self.outputs_dir).resolve())

    def spec(self, partition_key: str) -> LoraSpec:
        path = self.workspace.specs_dir / f"{partition_key}.yaml"
        if not path.exists():
            raise dg.Failure(f"no LoRA spec {path} for partition {partition_key!r}")
        return load_spec(path)


class CaptionModel(dg.ConfigurableResource):
    """The Florence-2 captioner for images without an artist caption. `model` is a local
    folder or hub id of a native-format checkpoint (florence-community/Florence-2-base);
    empty means none: such images then fail the captions step with what to configure."""

    model: str = ""
    task: str = "<MORE_DETAILED_CAPTION>"
    batch_size: int = 8
    max_new_tokens: int = 256
    num_beams: int = 3

    def settings(self) -> CaptionerSettings | None:
        if not self.model:
            return None
        return CaptionerSettings(model=self.model, task=self.task, batch_size=self.batch_size,
                                 max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)


class ClipModel(dg.ConfigurableResource):
    """An open_clip model for the XY plot's CLIP scores: a local folder (open_clip_config.json
    + safetensors) or hf-hub:<org>/<repo>; empty means the model-free measures only."""

    model: str = ""

    def loader(self, models_dir: Path) -> Callable[[], ClipScorer] | None:
        if not self.model:
            return None

        def load() -> ClipScorer:
            try:
                return ClipScorer(self.model, models_dir)
            except ClipUnavailable as exc:
                raise dg.Failure(str(exc)) from exc

        return load


class Tracking(dg.ConfigurableResource):
    """wandb for training runs and XY plots: "offline" keeps runs on disk (the default, so no
    data leaves the studio), "online" sends them (WANDB_API_KEY from the environment),
    "disabled" logs nothing."""

    mode: str = "offline"
    project: str = "bioart_pipeline"

    def tracker(self, run_dir: Path, name: str, config: dict) -> Tracker:
        return Tracker(self.mode, self.project, run_dir, name, config)


class TrainingCompute(dg.ConfigurableResource):
    """Where training runs; definitions.py picks the backend from BIOART_COMPUTE.

    - local: a child process on this machine through Dagster Pipes (crash isolation, GPU
      memory released after each run); the `gpu` pool keeps one training on the card.
    - ray: a job on the Ray cluster at `ray_address` (its dashboard URL) asking for
      `gpus_per_job` GPUs; inputs and outputs travel encrypted through `transfer_store`
      with the key in BIOART_TRANSFER_KEY (an environment variable on both sides, never
      configuration). `worker_python` is the cluster's Python with bioart_pipeline installed.
    """

    backend: str = "local"
    ray_address: str = ""
    transfer_store: str = ""
    gpus_per_job: float = 1.0
    cpus_per_job: float = 1.0
    worker_python: str = "python"

    def train(self, context: dg.AssetExecutionContext, job_file: Path, run_dir: Path) -> None:
        if self.backend == "local":
            train_locally(context, job_file, run_dir)
        elif self.backend == "ray":
            RayTraining(self.ray_address, self.transfer_store, self.gpus_per_job,
                        self.cpus_per_job, self.worker_python).train(
                context, TrainingJob.load(job_file), run_dir)
        else:
            raise dg.Failure(f"unknown compute backend {self.backend!r}: use local or ray")
