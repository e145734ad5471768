"""Training speed: steps/s, time outside the model, and what the input caches buy.

    .venv/bin/python benchmarks/training.py [--images 16] [--steps 12]
    .venv/bin/python benchmarks/training.py --sdxl   # on an NVIDIA GPU

Tiny model (any machine):
  1. a real `train_lora` run: optimizer steps/s and the fraction of step time spent outside
     the model's forward, backward and optimizer step (target: under 10 %);
  2. the same LoRA step with cached latents and text embeddings versus encoding every batch
     through the VAE and both text encoders (what a trainer without caches does), in this
     process, and the speed-up ratio.
--sdxl: a full-size SDXL UNet built from its config with random weights (no download) at
1024 px, batch 1, bf16, gradient checkpointing, LoRA rank 32 on attention: s/it and peak
GPU memory (target: at most 8 GiB).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig

from bioart_pipeline.models.families import UNET_LORA_TARGETS
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.training import loop
from bioart_pipeline.training.data import cache_latents, encode_captions, encode_latent
from bioart_pipeline.training.job import TrainingJob
from bioart_pipeline.training.objectives import objective_for

from common import SDXL_UNET, Quiet, cuda_seconds, training_images

SIZE = 128  # the tiny profile's resolution

def real_run(job: TrainingJob, run_dir: Path) -> dict:
    details = loop.train_lora(job, run_dir, Quiet()).details
    return {"steps_per_s": details["optimizer_steps"] / details["step_seconds"],
            "outside": details["outside_model_fraction"]}


def cache_speedup(job: TrainingJob, steps: int, tmp: Path) -> tuple[float, float]:
    """Seconds per step with the caches, and encoding every batch, on one pipeline."""
    device = torch.device("cpu")
    pipe = load_pipeline(job.profile, Path(job.models_dir))
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        module.requires_grad_(False)
    params = loop._add_adapters(pipe, job.preset)
    optimizer = torch.optim.AdamW(params, lr=job.preset.learning_rate)
    objective = objective_for(pipe, job.profile.family.flow_matching, job.preset.min_snr_gamma)
    cached_latents, _ = cache_latents(pipe.vae, job.images, tmp / "latents", device)
    cached_text = encode_captions(pipe, job.profile.family, [i.caption for i in job.images],
                                  device)
    rng = random.Random(0)
    batch_size = job.preset.batch_size

    def step(batch, latents, embeddings) -> None:
        inputs = loop._model_inputs(pipe, objective, batch, rng, latents=latents,
                                    embeddings=embeddings, preset=job.preset, device=device,
                                    dtype=torch.float32, source_sizes=False)
        loop._loss(pipe, pipe.unet, inputs, embeddings, device, len(batch)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def encoded_now(batch) -> dict[str, torch.Tensor]:
        return {image.key: encode_latent(pipe.vae, image, device) for image in batch}

    def timed(make_inputs) -> float:
        started = time.perf_counter()
        for index in range(steps):
            batch = [job.images[(index * batch_size + i) % len(job.images)]
                     for i in range(batch_size)]
            step(batch, *make_inputs(batch))
        return (time.perf_counter() - started) / steps

    timed(lambda batch: (cached_latents, cached_text))  # warm-up
    cached = timed(lambda batch: (cached_latents, cached_text))
    uncached = timed(lambda batch: (encoded_now(batch), None))
    return cached, uncached


def sdxl_unet(steps: int) -> None:
    if not torch.cuda.is_available():
        raise SystemExit("--sdxl needs an NVIDIA GPU")
    device = torch.device("cuda")
    unet = UNet2DConditionModel(**SDXL_UNET).to(device, torch.bfloat16)
    unet.requires_grad_(False)
    unet.enable_gradient_checkpointing()
    unet.add_adapter(LoraConfig(r=32, lora_alpha=32, init_lora_weights="gaussian",
                                target_modules=list(UNET_LORA_TARGETS["attention"])))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latents = torch.randn(1, 4, 128, 128, device=device, dtype=torch.bfloat16)
    text = torch.randn(1, 77, 2048, device=device, dtype=torch.bfloat16)
    added = {"text_embeds": torch.randn(1, 1280, device=device, dtype=torch.bfloat16),
             "time_ids": torch.tensor([[1024, 1024, 0, 0, 1024, 1024]], device=device,
                                      dtype=torch.bfloat16)}
    torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            t = torch.randint(0, 1000, (1,), device=device)
            out = unet(latents, t, text, added_cond_kwargs=added).sample
        torch.nn.functional.mse_loss(out.float(), latents.float()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    per_step = cuda_seconds(step, steps, warmup=2)
    peak = torch.cuda.max_memory_allocated() / 1024 ** 3
    print(f"SDXL UNet {sum(p.numel() for p in unet.parameters()) / 1e9:.2f} B parameters, "
          f"LoRA rank 32 attention, 1024 px, batch 1, bf16, gradient checkpointing on "
          f"{torch.cuda.get_device_name()}:")
    print(f"  {per_step:.3f} s/it, peak GPU memory {peak:.2f} GiB (target <= 8 GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--sdxl", action="store_true")
    args = parser.parse_args()
    if args.sdxl:
        sdxl_unet(args.steps)
        return
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        preset = PRESETS["style"].with_overrides({
            "epochs": 3, "batch_size": 2, "grad_accumulation": 1, "warmup_steps": 0,
            "save_every_n_epochs": 3, "lora_targets": "locon"})
        job = TrainingJob(lora="benchmark", profile=get_profile("tiny"), preset=preset,
                          images=training_images(tmp / "images", args.images),
                          models_dir=str(tmp / "models"), latent_cache_dir=str(tmp / "cache"),
                          wandb_mode="disabled")
        real = real_run(job, tmp / "run")
        print(f"tiny model, {args.images} images at {SIZE} px, batch 2, LoCon rank 32, "
              f"{torch.get_num_threads()} CPU threads:")
        print(f"  train_lora: {real['steps_per_s']:.2f} optimizer steps/s, "
              f"{real['outside']:.1%} of step time outside forward/backward/optimizer "
              f"(target < 10 %)")
        cached, uncached = cache_speedup(job, args.steps, tmp)
        print(f"  per step: {cached:.3f} s with cached latents and text embeddings, "
              f"{uncached:.3f} s encoding every batch: {uncached / cached:.2f}x speed-up "
              f"from the caches")


if __name__ == "__main__":
    main()
