"""Overhead of each compute backend, on this machine.

    .venv/bin/python benchmarks/compute.py [--images 100]

1. Job start to the trainer's first step (base model loaded, latents ready), for the same
   tiny-model job: `local` (a child process) and `ray` (encrypt and upload the inputs, submit
   to a Ray head started here on 127.0.0.1, the worker downloads and decrypts them). The
   difference is what the ray backend adds before any training happens.
2. Archive + transfer per 100 preprocessed images at SDXL size (~1 MP PNGs with a grain that
   makes them as heavy as painted artwork): pack and encrypt
   into the transfer store (a local folder here; a bucket adds network time), then download,
   decrypt and unpack, as the worker does.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bioart_pipeline.compute.crypto import KEY_VARIABLE, new_key, transfer_key
from bioart_pipeline.compute.transfer import INPUTS, TransferStore, pack_inputs, unpack_inputs
from bioart_pipeline.models.profiles import get_profile
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.training.job import TrainingImage, TrainingJob

from common import illustration, training_images

FIRST_STEP = "latents:"  # the trainer's last line before its first optimizer step


def tiny_job(tmp: Path, images: tuple[TrainingImage, ...]) -> TrainingJob:
    preset = PRESETS["style"].with_overrides({"epochs": 1, "batch_size": 4,
                                              "grad_accumulation": 1, "warmup_steps": 0})
    return TrainingJob(lora="benchmark", profile=get_profile("tiny"), preset=preset,
                       images=images, models_dir=str(tmp / "models"),
                       latent_cache_dir=str(tmp / "latents"), wandb_mode="disabled")


def local_start(job_file: Path, run_dir: Path) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bioart_pipeline.compute.entrypoint", str(job_file),
         str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if FIRST_STEP in line:
            break
    seconds = time.perf_counter() - started
    process.kill()
    process.wait()
    return seconds


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start(job: TrainingJob, tmp: Path) -> float:
    from ray.job_submission import JobSubmissionClient

    ray, dashboard = str(Path(sys.executable).parent / "ray"), _port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "RAY_USAGE_STATS_ENABLED": "0",
           "BIOART_WORKER_MODELS_DIR": job.models_dir}  # the same built model as the local run
    subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={_port()}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                    f"--ray-client-server-port={_port()}", "--num-cpus=2", "--num-gpus=0",
                    "--object-store-memory=200000000", f"--temp-dir=/tmp/ray-bench-{os.getpid()}"],
                   env=env, check=True, capture_output=True, timeout=120)
    try:
        client = JobSubmissionClient(f"http://127.0.0.1:{dashboard}")
        store = TransferStore(str(tmp / "store"))
        started = time.perf_counter()
        pack_inputs(job, tmp / "inputs.tar")
        store.upload(tmp / "inputs.tar", "bench", INPUTS, transfer_key())
        job_id = client.submit_job(entrypoint=f"{sys.executable} -m bioart_pipeline.compute."
                                              f"worker {store.uri} bench",
                                   entrypoint_num_cpus=2)
        while FIRST_STEP not in client.get_job_logs(job_id):
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        client.stop_job(job_id)
        return seconds
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def _textured(image: Image.Image, seed: int) -> Image.Image:
    """Paper-like grain: PNGs as heavy as painted or scanned artwork (flat vector art
    compresses to a few KB and would flatter the transfer)."""
    grain = np.random.default_rng(seed).normal(0, 6, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def transfer(tmp: Path, count: int) -> tuple[float, float, float]:
    """(seconds up, seconds down, MB stored) for `count` ~1 MP images."""
    folder = tmp / "sdxl_images"
    folder.mkdir()
    images = []
    for seed in range(count):
        path = folder / f"{seed}.png"
        _textured(illustration(seed, (1024, 1024), shapes=12), seed).save(path)
        images.append(TrainingImage(key=f"k{seed}", file=str(path), role="train",
                                    caption=f"trig, cell {seed}", bucket=(1024, 1024)))
    job = tiny_job(tmp, tuple(images))
    store, key = TransferStore(str(tmp / "store")), transfer_key()
    started = time.perf_counter()
    pack_inputs(job, tmp / "up.tar")
    stored = store.upload(tmp / "up.tar", "transfer", INPUTS, key)
    up = time.perf_counter() - started
    started = time.perf_counter()
    store.download("transfer", INPUTS, tmp / "down.tar", key)
    unpack_inputs(tmp / "down.tar", tmp / "worker", tmp / "models")
    return up, time.perf_counter() - started, stored / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault(KEY_VARIABLE, new_key())
    os.environ.setdefault("WANDB_MODE", "disabled")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        job = tiny_job(tmp, training_images(tmp / "images", 16))
        job_file = job.save(tmp / "job.json")
        local_start(job_file, tmp / "warm")  # builds the tiny model once, outside the timings
        local = local_start(job_file, tmp / "local")
        remote = ray_start(job, tmp)
        up, down, megabytes = transfer(tmp, args.images)
    print(f"tiny model, 16 images, {os.cpu_count()} CPUs:")
    print(f"  job start to first step: local {local:.1f} s, ray {remote:.1f} s "
          f"(+{remote - local:.1f} s: encrypt, upload, submit, worker start, decrypt)")
    print(f"  {args.images} images at 1024 px ({megabytes:.0f} MB encrypted): pack + encrypt + "
          f"store {up:.1f} s, fetch + decrypt + unpack {down:.1f} s "
          f"({(up + down) * 100 / args.images:.1f} s per 100 images, local-folder store)")


if __name__ == "__main__":
    main()
