"""lora_checkpoints: train the LoRA through the compute resource; checkpoints every N epochs."""



import dagster as dg
import pandas as pd
from PIL import Image

from bioart_pipeline.common.charts import markdown_image
from bioart_pipeline.common.files import read_json, read_table, write_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.licensing.manifest import training_rows
from bioart_pipeline.models.profiles import pin_revision, profile_fingerprint
from bioart_pipeline.orchestration.compute import GpuCompute, gpu_asset
from bioart_pipeline.orchestration.metadata import path_value, stage_result, table_preview
from bioart_pipeline.orchestration.resources import StudioData, Tracking
from bioart_pipeline.preprocessing.stage import preprocessed_file
from bioart_pipeline.specs import LoraSpec
from bioart_pipeline.training.export import spec_metadata
from bioart_pipeline.training.job import REPORT, TrainingImage, TrainingJob


def lora_checkpoints_asset(pool: str | None) -> dg.AssetsDefinition:
    """`pool`: the compute resource's (one GPU job at a time on this machine's card;
    none on a cluster, whose own scheduler queues jobs until GPUs are free)."""

    @gpu_asset("lora_checkpoints", pool, ["license_manifest", "preprocessed_images"],
               {"pytorch", "safetensors"})
    def lora_checkpoints(context: dg.AssetExecutionContext, studio: StudioData,
                         compute: GpuCompute, tracking: Tracking) -> dg.MaterializeResult:
        """LoRA checkpoints (kohya-format safetensors) every N epochs, with the loss curve.
        A rerun with identical images, captions, config and base model reuses the run."""
        return _train(context, studio, compute, tracking)

    return lora_checkpoints


def _train(context: dg.AssetExecutionContext, studio: StudioData, compute: GpuCompute,
           tracking: Tracking) -> dg.MaterializeResult:
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    job = build_job(spec, workspace, tracking, compute)
    key = job.cache_key(profile_fingerprint(job.profile, workspace.models_dir))
    run_dir = workspace.stage_dir("lora_checkpoints", spec.name) / key
    reused = compute.run_once(context, job, run_dir, workspace.display_path(run_dir))
    report = read_json(run_dir / REPORT)
    table = pd.DataFrame([{**c, "run": key, "file": str(run_dir / c["file"])}
                          for c in report["checkpoints"]])
    path = workspace.table("lora_checkpoints", spec.name)
    version = write_table(table, path)
    with Image.open(run_dir / "loss.png") as curve:
        loss_md = markdown_image(curve.copy(), "loss curve")
    return stage_result(workspace, path, version, {
        **_latest_samples(run_dir),
        "run_folder": path_value(workspace, run_dir),
        "reused_previous_run": reused,
        "checkpoints": table_preview(table, ["epoch", "step", "loss", "sha256"]),
        "validation_loss_before": float(report["validation_losses"][0]),
        "validation_loss_final": float(report["validation_losses"][-1]),
        "final_step_loss": float(report["losses"][-1]),
        "loss_curve": dg.MetadataValue.md(loss_md),
        "optimizer_steps": int(report["optimizer_steps"]),
        "training_seconds": float(report["seconds"]),
        "device": report["device"], "mixed_precision": report["mixed_precision"],
        "outside_model_fraction": float(report["outside_model_fraction"]),
        **{k: float(report[k]) for k in ("peak_gpu_memory_gib",) if k in report},
    }, upstream=workspace.tables(spec.name, "license_manifest", "preprocessed_images"))


def _latest_samples(run_dir) -> dict[str, dg.MetadataValue]:
    """The last validation images, one per spec prompt, as trained at the final step."""
    strips = sorted((run_dir / "samples").glob("step_*.png"))
    if not strips:
        return {}
    with Image.open(strips[-1]) as strip:
        picture = markdown_image(strip.copy(), f"validation images, {strips[-1].stem}")
    return {"validation_samples": dg.MetadataValue.md(picture)}


def build_job(spec: LoraSpec, workspace: Workspace, tracking: Tracking, compute: GpuCompute
              ) -> TrainingJob:
    """The training job from the manifest's included images and the spec's resolved preset."""
    manifest = training_rows(read_table(workspace.table("license_manifest", spec.name)))
    if manifest.empty:
        raise dg.Failure(f"{spec.name}: no image may train this LoRA (see license_manifest)")
    buckets = read_table(workspace.table("preprocessed_images", spec.name)).set_index("key")
    cache = workspace.cache_dir / "preprocessed"
    images = tuple(
        TrainingImage(key=row.key, file=str(preprocessed_file(cache, row.key)),
                      caption=row.caption, role=row.role,
                      bucket=_pair(buckets, row.key, "bucket_width", "bucket_height"),
                      original_size=_pair(buckets, row.key, "original_width", "original_height"),
                      crop_left_top=_pair(buckets, row.key, "crop_left", "crop_top"))
        for row in manifest.itertuples())
    profile = pin_revision(spec.model_profile)
    preset = spec.training
    return TrainingJob(
        lora=spec.name, profile=profile, preset=preset, images=images,
        models_dir=str(workspace.models_dir), latent_cache_dir=str(workspace.cache_dir / "latents"),
        export_metadata=spec_metadata(spec), trigger=spec.trigger,
        validation_prompts=spec.validation_prompts, sample_steps=spec.evaluation.steps,
        wandb_mode=tracking.mode, wandb_project=tracking.project,
        placement=compute.placement,
    )


def _pair(table: pd.DataFrame, key: str, first: str, second: str) -> tuple[int, int]:
    return int(table.at[key, first]), int(table.at[key, second])
