"""Full-size SDXL or SD 1.5 through the real job code, on this machine (CPU or GPU).

    .venv/bin/python benchmarks/full_size_smoke.py [--family sdxl|sd15] [--dtype bfloat16]
                                                   [--keep FOLDER]

The architecture is built from its configs with random weights (no download), saved as a
local diffusers folder in the chosen dtype, and then each phase runs as the compute
resource runs it, `python -m bioart_pipeline.compute.entrypoint JOB OUT_DIR`, in its own
process, so each phase's peak memory is its own:
  1. train: load, encode the latent (fp32 VAE), one optimizer step at 512 px with gradient
     checkpointing, the epoch-1 checkpoint in kohya format and the resumable state;
  2. resume: the same run folder with two epochs: restore the state, one more step, the
     epoch-2 checkpoint;
  3. xy cell: the base model and the epoch-2 kohya file at weight 1.0, 4 sampling steps,
     512 px, scored.
It prints seconds and peak memory (the process's resident set; on a GPU also the card's
peak) per phase. The point is that the real code runs at full size; speed on a CPU is not
a training speed anyone would use. (Flux.1 at full size does not fit this machine's memory:
benchmarks/flux_smoke.py runs its full width with few blocks.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors import safe_open
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from bioart_pipeline.common.files import read_json
from bioart_pipeline.compute.jobs import save_job
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.evaluation.stage import XYJob
from bioart_pipeline.evaluation.xy_plot import Checkpoint, XYSettings
from bioart_pipeline.models.clip_tokenizer import VOCAB_SIZE
from bioart_pipeline.models.families import FAMILIES
from bioart_pipeline.models.profiles import get_profile
from bioart_pipeline.models.tiny_sd15 import write_sd15_folder
from bioart_pipeline.models.tiny_sdxl import write_sdxl_folder
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.specs.thresholds import Thresholds
from bioart_pipeline.training.job import REPORT, TrainingImage, TrainingJob

from common import SDXL_UNET, illustration

SIZE = 512
# stabilityai/stable-diffusion-xl-base-1.0: vae/, text_encoder/ and text_encoder_2/ configs
SDXL_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=1024,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512], scaling_factor=0.13025, force_upcast=True)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768)
OPEN_CLIP_BIG_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                       num_attention_heads=20, hidden_act="gelu", projection_dim=1280)


# stable-diffusion-v1-5/stable-diffusion-v1-5: unet/ and vae/ configs (its text encoder is CLIP-L)
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
SD15_VAE = {**SDXL_VAE, "sample_size": 512, "scaling_factor": 0.18215}


def _text_config(shape: dict) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=77,
                          bos_token_id=49406, eos_token_id=49407, pad_token_id=1, **shape)


def _sdxl() -> dict[str, torch.nn.Module]:
    return {"unet": UNet2DConditionModel(**SDXL_UNET), "vae": AutoencoderKL(**SDXL_VAE),
            "text_encoder": CLIPTextModel(_text_config(CLIP_L)),
            "text_encoder_2": CLIPTextModelWithProjection(_text_config(OPEN_CLIP_BIG_G))}


def _sd15() -> dict[str, torch.nn.Module]:
    return {"unet": UNet2DConditionModel(**SD15_UNET), "vae": AutoencoderKL(**SD15_VAE),
            "text_encoder": CLIPTextModel(_text_config(CLIP_L))}


BUILDS = {"sdxl": (_sdxl, write_sdxl_folder), "sd15": (_sd15, write_sd15_folder)}


def build(family: str, folder: Path, dtype: torch.dtype) -> None:
    """The random-weight base of `family`, saved as a diffusers folder (safetensors) in
    `dtype`."""
    models, write = BUILDS[family]
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in `dtype`: no fp32 copy of billions of parameters
    try:
        parts = models()
    finally:
        torch.set_default_dtype(previous)
    write(folder, parts)


def run_phase(job_file: Path, out_dir: Path) -> dict[str, float]:
    """The job as LocalCompute runs it, in a child process: seconds and its peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bioart_pipeline.compute.entrypoint",
                                str(job_file), str(out_dir)])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{job_file.name} failed ({process.returncode})")
    return {"seconds": time.perf_counter() - started, "peak_rss_gib": usage.ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="sdxl", choices=sorted(BUILDS))
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    placement = Placement(device="auto", dtype=args.dtype)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        figures = {"build": {}}
        started = time.perf_counter()
        base = tmp / args.family
        if not (base / "model_index.json").exists():
            build(args.family, base, getattr(torch, args.dtype))
        figures["build"]["seconds"] = time.perf_counter() - started
        profile = dataclasses.replace(get_profile(args.family, source=str(base)),
                                      resolution=SIZE)
        illustration(0, (SIZE, SIZE), shapes=12).save(tmp / "image.png")
        image = TrainingImage(key="k0", file=str(tmp / "image.png"), role="train",
                              caption="trig, a cell with two nuclei", bucket=(SIZE, SIZE))
        preset = PRESETS["style"].with_overrides({
            "epochs": 1, "batch_size": 1, "grad_accumulation": 1, "warmup_steps": 0,
            "save_every_n_epochs": 1, "gradient_checkpointing": True})
        job = TrainingJob(lora="smoke", profile=profile, preset=preset, images=(image,),
                          models_dir=str(tmp / "models"), latent_cache_dir=str(tmp / "latents"),
                          wandb_mode="disabled", placement=placement)
        run = tmp / "run"
        figures["train"] = run_phase(save_job(job, tmp / "train.json"), run)
        resumed = dataclasses.replace(job, preset=dataclasses.replace(preset, epochs=2))
        figures["resume"] = run_phase(save_job(resumed, tmp / "resume.json"), run)
        report = read_json(run / REPORT)
        checkpoint = run / report["checkpoints"][-1]["file"]
        with safe_open(str(checkpoint), "pt") as kohya:
            keys = list(kohya.keys())
        xy = XYJob(lora="smoke", profile=profile, checkpoints=(Checkpoint("epoch 2", checkpoint),),
                   settings=XYSettings(prompts=("trig, a cell",), weights=(1.0,), seeds=(1,),
                                       steps=4, guidance_scale=5.0, size=SIZE),
                   training_images=(image.file,), trigger="trig", thresholds=Thresholds(),
                   clip_model="", models_dir=job.models_dir, tracking_name="smoke",
                   wandb_mode="disabled", placement=placement)
        figures["xy cell"] = run_phase(save_job(xy, tmp / "xy.json"), tmp / "xy")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU, {torch.get_num_threads()} threads"
    title = FAMILIES[args.family].title
    print(f"full-size {title} (random weights), {args.dtype}, {SIZE} px, batch 1, on {device}:")
    print(f"  build and save: {figures['build']['seconds']:.0f} s")
    print(f"  train (load, latent, 1 step, checkpoint): {figures['train']['seconds']:.0f} s, "
          f"peak RSS {figures['train']['peak_rss_gib']:.1f} GiB")
    print(f"  resume (restore state, 1 step, checkpoint): {figures['resume']['seconds']:.0f} s, "
          f"peak RSS {figures['resume']['peak_rss_gib']:.1f} GiB")
    print(f"  xy cell (base + LoRA at 1.0, 4 steps, scored): {figures['xy cell']['seconds']:.0f} "
          f"s, peak RSS {figures['xy cell']['peak_rss_gib']:.1f} GiB")
    print(f"  {report['optimizer_steps']} optimizer steps over the resume, "
          f"{len(report['checkpoints'])} checkpoints; kohya file: {len(keys)} tensors, "
          f"{sum(k.startswith('lora_unet_') for k in keys)} lora_unet_ keys"
          + (f"; peak GPU {report['peak_gpu_memory_gib']} GiB" if 'peak_gpu_memory_gib'
             in report else ""))


if __name__ == "__main__":
    main()
