"""The device and dtype contract of every GPU stage: a job runs where its placement says.

Each stage's job (training, the XY plot with CLIP, captioning) runs with device cpu and
dtype bfloat16 (the CPU has bfloat16, so this runs on any machine) while a forward hook on
every torch module checks what the module owns and what it is fed:
- every parameter and buffer is on the device, and floating ones are bfloat16, except the
  trainable LoRA weights, which train in float32 (the master weights of mixed precision);
- every tensor passed to a module that owns weights is on the device, and a floating one
  has those weights' dtype.
A stage that loads a model in fp32, or never moves it, fails here with the modules named."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bioart_pipeline.captioning.florence import (
    CAPTIONS,
    TINY_FLORENCE_SOURCE,
    CaptionerSettings,
    CaptionJob,
    run_caption_job,
)
from bioart_pipeline.common.files import read_json
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.evaluation.clip_scores import TINY_CLIP_SOURCE
from bioart_pipeline.evaluation.stage import RECOMMENDATION, XYJob, run_xy_job
from bioart_pipeline.evaluation.xy_plot import Checkpoint, XYSettings
from bioart_pipeline.models.profiles import get_profile, load_pipeline, profile_fingerprint
from bioart_pipeline.specs.thresholds import Thresholds
from bioart_pipeline.training.data import cache_latents
from bioart_pipeline.training.job import REPORT
from bioart_pipeline.training.loop import run_training_job
from tests.conftest import drawing, random_lora_file, tiny_training_job

PLACEMENT = Placement(device="cpu", dtype="bfloat16")
DEVICE, DTYPE = torch.device("cpu"), torch.bfloat16


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def _tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class Contract:
    """Records every breach of the contract, and which module types it saw run."""

    def __init__(self, training: bool) -> None:
        self.training = training  # only a training job may hold float32 (trainable) weights
        self.breaches: list[str] = []
        self.seen: Counter[str] = Counter()
        self.trainable_seen = 0

    def check(self, module: torch.nn.Module, args: tuple) -> None:
        name = type(module).__name__
        self.seen[name] += 1
        owned = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        weights = [t for t in owned if t.is_floating_point()]
        for tensor in owned:
            if tensor.device != DEVICE:
                self.breaches.append(f"{name} holds a tensor on {tensor.device}")
        for weight in weights:
            trainable = self.training and weight.requires_grad
            self.trainable_seen += trainable
            expected = torch.float32 if trainable else DTYPE
            if weight.dtype != expected:
                self.breaches.append(f"{name} holds {weight.dtype} weights, not {expected}")
        if not weights:
            return
        # A LoRA layer's float32 master weights compute in the placement's dtype under
        # autocast, so it may be fed either.
        accepted = {weights[0].dtype, DTYPE} if weights[0].dtype == torch.float32 \
            and self.training else {weights[0].dtype}
        for tensor in _tensors(args):
            if tensor.device != DEVICE:
                self.breaches.append(f"{name} is fed a tensor on {tensor.device}")
            if tensor.is_floating_point() and tensor.dtype not in accepted:
                self.breaches.append(f"{name} ({weights[0].dtype}) is fed {tensor.dtype}")


@contextlib.contextmanager
def contract(training: bool = False) -> Iterator[Contract]:
    watcher = Contract(training)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: watcher.check(module, args))
    try:
        yield watcher
    finally:
        handle.remove()


def _assert_kept(watcher: Contract, must_see: set[str]) -> None:
    breaches = Counter(watcher.breaches)
    assert not breaches, f"{sum(breaches.values())} breaches: {breaches.most_common(8)}"
    assert must_see <= set(watcher.seen), sorted(must_see - set(watcher.seen))


def test_training_runs_on_its_device_and_dtype(tmp_path: Path, models_dir: Path) -> None:
    job = tiny_training_job(tmp_path, models_dir, prompts=("trig, a cell",), epochs=1,
                            save_every_n_epochs=1, train_text_encoder=True,
                            gradient_checkpointing=True,
                            mixed_precision="no")  # the placement's dtype overrides it
    job = dataclasses.replace(job, placement=PLACEMENT)
    # Latents are encoded once in float32 (the one declared exception) and cached; the
    # contract covers the training that follows: steps, validation loss, sample images.
    vae = load_pipeline(job.profile, models_dir).vae
    cache_latents(vae, job.images, job.latent_folder(profile_fingerprint(job.profile,
                                                                         models_dir)), DEVICE)
    with contract(training=True) as watcher:
        run_training_job(job, tmp_path / "run", _Lines())
    report = read_json(tmp_path / "run" / REPORT)
    assert report["mixed_precision"] == "bf16" and report["device"] == "cpu"
    assert report["latents_encoded"] == 0
    assert watcher.trainable_seen > 0  # the LoRA layers ran, in float32
    _assert_kept(watcher, {"Conv2d", "Linear", "Embedding", "GroupNorm", "LayerNorm"})


def test_xy_plot_and_clip_run_on_their_device_and_dtype(tmp_path: Path,
                                                         models_dir: Path) -> None:
    training = []
    for seed in range(2):
        training.append(tmp_path / f"train{seed}.png")
        drawing(seed, size=(256, 256)).resize((128, 128)).save(training[-1])
    job = XYJob(
        lora="contract", profile=get_profile("tiny"),
        checkpoints=(Checkpoint("epoch 1", random_lora_file(models_dir, tmp_path / "l.safetensors",
                                                            seed=3)),),
        settings=XYSettings(prompts=("trig, a cell",), weights=(1.0,), seeds=(1,), steps=2,
                            guidance_scale=5.0, size=128),
        training_images=tuple(map(str, training)), trigger="trig", thresholds=Thresholds(),
        clip_model=TINY_CLIP_SOURCE, models_dir=str(models_dir), tracking_name="contract",
        wandb_mode="disabled", placement=PLACEMENT)
    with contract() as watcher:
        run_xy_job(job, tmp_path / "xy", _Lines())
    assert (tmp_path / "xy" / RECOMMENDATION).exists()
    # UNet, VAE decoder, both text encoders, the LoRA layers, and open_clip's towers
    _assert_kept(watcher, {"Conv2d", "Linear", "Embedding", "GroupNorm", "VisionTransformer"})


def test_captioning_runs_on_its_device_and_dtype(tmp_path: Path, models_dir: Path) -> None:
    files = []
    for seed in range(2):
        files.append((f"k{seed}", str(tmp_path / f"{seed}.png")))
        drawing(seed, size=(320, 256)).save(files[-1][1])
    job = CaptionJob(settings=CaptionerSettings(model=TINY_FLORENCE_SOURCE, max_new_tokens=8,
                                                num_beams=2),
                     images=tuple(files), models_dir=str(models_dir), placement=PLACEMENT)
    with contract() as watcher:
        run_caption_job(job, tmp_path / "out", _Lines())
    assert sorted(read_json(tmp_path / "out" / CAPTIONS)) == ["k0", "k1"]
    _assert_kept(watcher, {"Conv2d", "Linear", "Embedding", "LayerNorm"})


def test_float16_on_the_cpu_is_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="float16 needs a CUDA device"):
        Placement(device="cpu", dtype="float16")
