"""The training loop's guards and observability, in process on the tiny model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image
from safetensors.torch import load_file

from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.models.profiles import get_profile, load_pipeline
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.training import loop, objectives
from bioart_pipeline.training.data import cache_latents
from bioart_pipeline.training.guards import GIB, OutOfGpuMemory, memory_warning
from tests.conftest import tiny_training_job

PROMPTS = ("trig, a mitochondrion", "a red blood cell")


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def test_half_precision_trains_with_fp32_lora_and_saves_validation_images(
        tmp_path: Path, models_dir: Path) -> None:
    """The GPU's bf16 path (frozen weights in bf16, LoRA in fp32) run on the CPU."""
    job = dataclasses.replace(
        tiny_training_job(tmp_path, models_dir, PROMPTS, epochs=1, sample_every_n_steps=2),
        placement=Placement(device="cpu", dtype="bfloat16"))
    result = loop.train_lora(job, tmp_path / "run", _Log())

    assert result.details["mixed_precision"] == "bf16"
    assert result.details["optimizer_steps"] == 3
    assert all(torch.isfinite(torch.tensor(result.losses)))
    lora = load_file(str(tmp_path / "run" / "epoch_0001.safetensors"))
    assert {t.dtype for k, t in lora.items() if "lora" in k} == {torch.float32}
    strips = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert strips == ["step_000002.png"]  # every 2 steps, not also at the checkpoint
    with Image.open(tmp_path / "run" / "samples" / strips[-1]) as strip:
        assert strip.width == 128 * len(PROMPTS) and strip.height > 128  # captions below


def test_offline_wandb_gets_metrics_and_validation_images_and_step_time_is_split(
        tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    job = dataclasses.replace(tiny_training_job(tmp_path, models_dir, PROMPTS, epochs=1),
                              wandb_mode="offline")
    details = loop.train_lora(job, tmp_path / "run", _Log()).details
    images = list((tmp_path / "run" / "wandb").glob(
        "offline-run-*/files/media/images/validation_samples_*.png"))
    assert len(images) == 1
    history = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert history and history[0].stat().st_size > 0
    assert 0 < details["model_seconds"] < details["step_seconds"]
    # the seconds are rounded to 1 ms: the fraction recomputed from them is that exact
    assert details["outside_model_fraction"] == pytest.approx(
        1 - details["model_seconds"] / details["step_seconds"],
        abs=1e-3 / details["step_seconds"] + 1e-4)


def test_out_of_memory_names_the_settings_to_change(tmp_path: Path, models_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "_loss", no_memory)
    job = tiny_training_job(tmp_path, models_dir, epochs=1, batch_size=4,
                            train_text_encoder=True)
    with pytest.raises(OutOfGpuMemory) as stopped:
        loop.train_lora(job, tmp_path / "run", _Log())
    message = str(stopped.value)
    assert "out of memory at step 1" in message
    assert "batch_size: 2 with grad_accumulation: 4" in message
    assert "adamw8bit" in message and "train_text_encoder: false" in message


def test_memory_warning_only_near_capacity() -> None:
    preset = PRESETS["subject"]
    assert memory_warning(6 * GIB, 12 * GIB, preset) is None
    near = memory_warning(int(11.2 * GIB), 12 * GIB, preset)
    assert near and "close to the card's capacity" in near and "lower rank (now 64)" in near
    past = memory_warning(14 * GIB, 12 * GIB, preset)
    assert past and "spilling into system memory" in past


def test_unknown_optimizer_is_refused_when_the_spec_is_read() -> None:
    with pytest.raises(ValueError, match="optimizer must be one of"):
        PRESETS["style"].with_overrides({"optimizer": "adam8"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message for machines without CUDA")
def test_8bit_adamw_without_cuda_says_what_to_use(tmp_path: Path, models_dir: Path) -> None:
    job = tiny_training_job(tmp_path, models_dir, epochs=1, optimizer="adamw8bit")
    with pytest.raises(ValueError, match="only on a CUDA GPU"):
        loop.train_lora(job, tmp_path / "run", _Log())


def test_vae_that_overflows_is_refused_with_the_fix(tmp_path: Path, models_dir: Path) -> None:
    """What the SDXL VAE does in fp16: NaN latents must never reach the cache."""
    job = tiny_training_job(tmp_path, models_dir)
    vae = load_pipeline(job.profile, models_dir).vae
    with torch.no_grad():
        vae.encoder.conv_in.weight.fill_(float("inf"))
    with pytest.raises(ValueError, match="fp16-fix VAE"):
        cache_latents(vae, job.images, tmp_path / "latents", torch.device("cpu"))
    assert not list((tmp_path / "latents").glob("*.safetensors"))


def test_the_learning_rate_schedule_spans_every_step_when_buckets_split_batches(
        tmp_path: Path, models_dir: Path) -> None:
    """12 images in two buckets make 7 batches an epoch, not 12 / 2 = 6: a schedule sized
    from the image count reached zero early, and the last epoch learned nothing."""
    job = tiny_training_job(tmp_path, models_dir, epochs=4, save_every_n_epochs=1,
                            warmup_steps=0, lr_scheduler="cosine_with_restarts",
                            lr_num_cycles=1)
    images = []
    for index, image in enumerate(job.images):
        if index >= 5:  # 7 landscape images: a second bucket
            Image.open(image.file).resize((128, 96)).save(image.file)
            image = dataclasses.replace(image, bucket=(128, 96))
        images.append(image)
    job = dataclasses.replace(job, images=tuple(images))
    result = loop.train_lora(job, tmp_path / "run", _Log())
    assert result.details["optimizer_steps"] == 4 * 4  # ceil(7 batches / 2 accumulated)
    third, last = (load_file(str(tmp_path / "run" / f"epoch_000{e}.safetensors")) for e in (3, 4))
    assert any(not torch.equal(third[k], last[k]) for k in last if "lora" in k)


def test_a_base_that_predicts_something_else_is_refused() -> None:
    from diffusers import DDPMScheduler

    for kind in objectives.PREDICTION_TYPES:
        objectives.check_prediction_type(DDPMScheduler(prediction_type=kind))
    with pytest.raises(ValueError, match="prediction_type 'sample'.*scheduler_config.json"):
        objectives.check_prediction_type(DDPMScheduler(prediction_type="sample"))


def test_gradient_checkpointing_covers_the_text_encoders_when_they_train(
        models_dir: Path) -> None:
    from transformers.modeling_layers import GradientCheckpointingLayer

    def checkpointed(encoder) -> bool:
        """As transformers decides per layer: the flag set and the layer in training mode."""
        layers = [m for m in encoder.modules() if isinstance(m, GradientCheckpointingLayer)]
        return bool(layers) and all(m.gradient_checkpointing and m.training for m in layers)

    pipe = load_pipeline(get_profile("tiny"), models_dir)
    loop.enable_gradient_checkpointing(pipe, PRESETS["style"])
    assert pipe.unet.is_gradient_checkpointing
    assert not checkpointed(pipe.text_encoder)  # frozen: nothing to save
    loop.enable_gradient_checkpointing(
        pipe, PRESETS["style"].with_overrides({"train_text_encoder": True}))
    assert checkpointed(pipe.text_encoder) and checkpointed(pipe.text_encoder_2)


def test_resume_state_restores_every_cuda_generator_and_the_fp16_grad_scaler(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU, "the same result as an uninterrupted run" needs each device's generator and
    the loss scale back. The CUDA calls are stood in for (no GPU here); the files are real."""
    import random

    from peft import LoraConfig, get_peft_model

    from bioart_pipeline.training.state import load_state, save_state

    devices = {0: torch.arange(16, dtype=torch.uint8), 1: torch.arange(16, 32, dtype=torch.uint8)}
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: list(devices.values()))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)

    def parts():
        model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(4, 4)),
                               LoraConfig(r=2, target_modules=["0"]))
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
        return ({"unet": model}, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1),
                random.Random(0), torch.amp.GradScaler("cpu", init_scale=2.0 ** 16))

    models, optimizer, schedule, rng, scaler = parts()
    scaler.scale(torch.ones(1))  # the scale exists once used
    scaler.update(new_scale=256.0)  # as after overflows
    progress = type("Progress", (), {"losses": [0.5], "validation_losses": [0.4]})()
    save_state(tmp_path, 1, 3, progress, models, optimizer, schedule, rng, scaler)

    models, optimizer, schedule, rng, fresh_scaler = parts()
    assert load_state(tmp_path, models, optimizer, schedule, rng, fresh_scaler).step == 3
    assert [t.tolist() for t in restored[0]] == [t.tolist() for t in devices.values()]
    assert fresh_scaler.get_scale() == 256.0


@pytest.mark.parametrize("source_sizes", [True, False])
def test_the_unet_is_conditioned_on_each_images_source_size_and_crop(
        tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch,
        source_sizes: bool) -> None:
    """SDXL micro-conditioning as SDXL was trained (and kohya trains): original size and crop
    offset of the image itself; the tiny base, trained at original = target, keeps those."""
    job = tiny_training_job(tmp_path, models_dir, epochs=1, batch_size=1, grad_accumulation=1)
    images = tuple(dataclasses.replace(image, original_size=(1000 + i, 700), crop_left_top=(i, 3))
                   for i, image in enumerate(job.images))
    profile = dataclasses.replace(job.profile, source_size_conditioning=source_sizes)
    job = dataclasses.replace(job, images=images, profile=profile)
    seen: list[tuple[float, ...]] = []
    forward = UNet2DConditionModel.forward

    def spy(self, *args, added_cond_kwargs=None, **kwargs):
        seen.extend(tuple(row.tolist()) for row in added_cond_kwargs["time_ids"].float())
        return forward(self, *args, added_cond_kwargs=added_cond_kwargs, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", spy)
    loop.train_lora(job, tmp_path / "run", _Log())
    # (original h, original w, crop top, crop left, target h, target w), 128 px buckets
    expected = {(700, 1000 + i, 3, i, 128, 128) if source_sizes else (128, 128, 0, 0, 128, 128)
                for i in range(len(images))}
    assert set(seen) == expected  # every image, in training steps and the validation loss


def test_validation_samples_are_captioned_with_their_prompts() -> None:
    from PIL import Image

    from bioart_pipeline.common.charts import captioned_strip

    prompts = ("trig, a nucleus", "trig, a cross-section of an animal cell with nucleus and "
               "mitochondria, flat vector style")
    images = [Image.new("RGB", (128, 128), "red"), Image.new("RGB", (128, 128), "blue")]
    strip = captioned_strip(images, prompts, 128)
    assert strip.width == 256 and strip.height > 128 + 3 * 11  # the long prompt wraps
    assert strip.getpixel((64, 64)) == (255, 0, 0) and strip.getpixel((192, 64)) == (0, 0, 255)
    first, second = (strip.crop((x, 128, x + 128, strip.height)) for x in (0, 128))
    inked = [sum(1 for p in part.convert("L").getdata() if p < 128) for part in (first, second)]
    assert inked[1] > inked[0] > 0  # the longer prompt, more text


def test_a_4bit_base_is_refused_without_cuda_with_what_to_do(tmp_path: Path, models_dir: Path
                                                               ) -> None:
    """NF4 (QLoRA) is for Flux on a 24 GB card; diffusers quantizes on the GPU only, so a CPU
    job stops at once with the setting to change, not deep inside diffusers."""
    job = tiny_training_job(tmp_path, models_dir, profile="tiny-flux", base_quantization="nf4")
    with pytest.raises(ValueError, match="nf4 needs a CUDA GPU.*base_quantization: none"):
        loop.train_lora(job, tmp_path / "run", _Log())
    assert not list((tmp_path / "run").glob("epoch_*"))


def test_output_preservation_pulls_the_trigger_less_prediction_back_to_the_base(
        models_dir: Path) -> None:
    """With the LoRA on, the caption without its trigger drifts from the base model's
    prediction; rows without the trigger are left alone; the term's gradient undoes it."""
    from bioart_pipeline.models.families import denoiser_of
    from bioart_pipeline.training.data import without_trigger

    assert without_trigger("trig, a cell, trig", "trig") == "a cell"
    assert without_trigger("trigger words, a cell", "trig") == "trigger words, a cell"
    pipe = load_pipeline(get_profile("tiny"), models_dir)
    preset = PRESETS["style"]
    params = loop._add_adapters(pipe, preset)
    torch.manual_seed(0)
    for p in params:  # a LoRA that has learned something (lora_B starts at zero)
        p.data.normal_(0, 0.05)
    unet = denoiser_of(pipe)
    inputs = loop._ModelInputs(
        noisy=torch.randn(3, 4, 16, 16), timesteps=torch.tensor([100, 500, 900]),
        target=torch.zeros(3, 4, 16, 16), loss_weights=torch.ones(3),
        time_ids=torch.tensor([[128, 128, 0, 0, 128, 128]] * 3, dtype=torch.float32),
        captions=["trig, a cell", "", "trig, a neuron"])
    models = loop._lora_models(pipe, preset).values()

    def drift() -> torch.Tensor:
        return loop._drift_without_trigger(pipe, unet, inputs, None, torch.device("cpu"),
                                           "trig", models)

    before = drift()
    assert before[1] == 0 and (before[[0, 2]] > 0).all()  # caption dropout: nothing to keep
    optimizer = torch.optim.SGD(params, lr=1.0)
    for _ in range(10):
        optimizer.zero_grad()
        drift().sum().backward()
        optimizer.step()
    after = drift().detach()
    assert after.sum() < 0.5 * before.sum(), (before, after)
    assert all(layer.disable_adapters is False for layer in unet.modules()
               if hasattr(layer, "lora_A"))  # the LoRA is back on after each base pass
