"""The one Definitions object, and the one place that picks the environment."""

from __future__ import annotations

import os

import dagster as dg

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.orchestration import checks, sensors
from bioart_pipeline.orchestration.assets import (
    captioning,
    evaluation,
    licensing,
    portfolio,
    preprocessing,
    release,
    review,
    training,
)
from bioart_pipeline.orchestration.compute import GpuCompute, LocalCompute, RayCompute
from bioart_pipeline.orchestration.jobs import lora_pipeline, lora_retraining
from bioart_pipeline.orchestration.resources import (
    CaptionModel,
    ClipModel,
    ReleaseSigning,
    StudioData,
    Tracking,
)


def build_definitions(workspace: Workspace | None = None,
                      caption_model: str | None = None) -> dg.Definitions:
    """Environment variables read here and nowhere else: BIOART_DATA_DIR,
    BIOART_OUTPUTS_DIR, BIOART_WANDB_MODE, BIOART_CAPTION_MODEL, BIOART_CLIP_MODEL,
    BIOART_RETRAIN_CRON, BIOART_SIGNING_KEY and BIOART_SIGNING_CERT (PEM files; unset: a local
    test certificate), BIOART_TSA_URL (an RFC 3161 time-stamping authority; unset: no
    timestamp) and the compute variables of `compute_from_env`. (Secrets are read
    where they are used, never copied into configuration: BIOART_TRANSFER_KEY, WANDB_API_KEY,
    cloud storage credentials.)"""
    workspace = workspace or Workspace.from_env()
    if caption_model is None:
        caption_model = os.environ.get("BIOART_CAPTION_MODEL", "")
    compute = compute_from_env()
    stage_modules = [portfolio, preprocessing, licensing, review, release]
    # The stages that run GPU jobs share the compute resource's pool: on this machine one
    # job at a time on the card; on a cluster none, Ray queues jobs by the GPUs they ask for.
    gpu_stages = [captioning.captions_asset(compute.pool),
                  training.lora_checkpoints_asset(compute.pool),
                  evaluation.xy_plot_evaluation_asset(compute.pool)]
    return dg.Definitions(
        assets=[*dg.load_assets_from_modules(stage_modules), *gpu_stages],
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[lora_pipeline, lora_retraining],
        # A LoRA's stages run one after another and the GPU stages hand their work to the
        # compute resource: one process per run spares each step a fresh import of torch.
        executor=dg.in_process_executor,
        sensors=[sensors.retraining_sensor],
        schedules=[sensors.retraining_schedule(os.environ.get("BIOART_RETRAIN_CRON",
                                                              "0 3 * * 1"))],
        resources={
            "studio": StudioData(data_dir=str(workspace.data_dir),
                                 outputs_dir=str(workspace.outputs_dir)),
            "captioner": CaptionModel(model=caption_model),
            "clip": ClipModel(model=os.environ.get("BIOART_CLIP_MODEL", "")),
            "tracking": Tracking(mode=os.environ.get("BIOART_WANDB_MODE", "offline")),
            "compute": compute,
            "signing": ReleaseSigning(key_file=os.environ.get("BIOART_SIGNING_KEY", ""),
                                      cert_file=os.environ.get("BIOART_SIGNING_CERT", ""),
                                      tsa_url=os.environ.get("BIOART_TSA_URL", "")),
        },
    )


def compute_from_env() -> GpuCompute:
    """BIOART_COMPUTE (local | ray); BIOART_DEVICE (auto | cuda | cpu) and BIOART_DTYPE
    (auto | bfloat16 | float16 | float32) for every GPU job; BIOART_PROCESSES (training
    processes per LoRA, one per GPU, default 1); for ray: BIOART_RAY_ADDRESS
    (dashboard URL), BIOART_TRANSFER_STORE, BIOART_RAY_GPUS (per job, default 1),
    BIOART_RAY_CPUS (default 1), BIOART_RAY_PYTHON (the cluster's Python, default `python`)."""
    backend = os.environ.get("BIOART_COMPUTE", "local")
    placement = {"device": os.environ.get("BIOART_DEVICE", "auto"),
                 "dtype": os.environ.get("BIOART_DTYPE", "auto"),
                 "processes": int(os.environ.get("BIOART_PROCESSES", "1"))}
    Placement(**placement)  # a typo fails here, when the definitions load
    if backend == "local":
        return LocalCompute(**placement)
    if backend == "ray":
        return RayCompute(
            **placement, ray_address=os.environ.get("BIOART_RAY_ADDRESS", ""),
            transfer_store=os.environ.get("BIOART_TRANSFER_STORE", ""),
            gpus_per_job=float(os.environ.get("BIOART_RAY_GPUS", "1")),
            cpus_per_job=float(os.environ.get("BIOART_RAY_CPUS", "1")),
            worker_python=os.environ.get("BIOART_RAY_PYTHON", "python"))
    raise ValueError(f"BIOART_COMPUTE must be local or ray, got {backend!r}")


defs = build_definitions()
