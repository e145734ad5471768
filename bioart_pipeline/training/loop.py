"""The training loop: one readable function, every knob from the resolved preset."""

from __future__ import annotations

import contextlib
import functools
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from diffusers.optimization import get_scheduler
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image

from bioart_pipeline.common.charts import line_chart
from bioart_pipeline.common.files import atomic_path, atomic_write_json, read_json, sha256_file
from bioart_pipeline.common.reporting import Reporter
from bioart_pipeline.common.tracking import Tracker
from bioart_pipeline.compute.placement import Placement
from bioart_pipeline.models.families import denoiser_of, family_of, text_encoder_modules
from bioart_pipeline.models.profiles import (
    cast_quietly,
    load_pipeline,
    profile_fingerprint,
)
from bioart_pipeline.training.data import (
    bucket_batches,
    cache_latents,
    encode_captions,
    time_ids,
    without_trigger,
)
from bioart_pipeline.training.export import lora_state_dict, write_lora
from bioart_pipeline.training.guards import (
    GIB,
    OutOfGpuMemory,
    check_finite,
    memory_warning,
    out_of_memory_message,
)
from bioart_pipeline.training.job import REPORT, TrainingJob
from bioart_pipeline.training.objectives import objective_for
from bioart_pipeline.training.pivotal import add_new_tokens, bundled
from bioart_pipeline.training.samples import render_samples, save_samples
from bioart_pipeline.training.state import load_state, save_state

TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class TrainingResult:
    run_dir: Path
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # mean loss per optimizer step
    # Loss at fixed noise and timesteps over all images, before training and after each epoch.
    validation_losses: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    main: bool = True  # the process that writes (the only one, unless training on several)


def train_lora(job: TrainingJob, run_dir: Path, reporter: Reporter) -> TrainingResult:
    """Train, checkpoint and resume; a CUDA out-of-memory becomes OutOfGpuMemory with advice."""
    session = _Session(job, run_dir, reporter)
    try:
        return session.run()
    except torch.cuda.OutOfMemoryError as exc:
        total = (torch.cuda.get_device_properties(session.device).total_memory
                 if session.device.type == "cuda" else None)
        raise OutOfGpuMemory(out_of_memory_message(job.preset, session.step + 1, total)) from exc


def run_training_job(job: TrainingJob, run_dir: Path, reporter: Reporter) -> None:
    """The compute entrypoint's runner: train, then write report.json (last)."""
    reporter.log(f"training {job.lora}: {len(job.images)} images, {job.preset.epochs} epochs, "
                 f"rank {job.preset.rank}, alpha {job.preset.alpha}")
    result = train_lora(job, run_dir, reporter)
    if not result.main:
        return
    atomic_write_json(run_dir / REPORT, {
        "checkpoints": result.checkpoints, "losses": result.losses,
        "validation_losses": result.validation_losses, **result.details})


class _Session:
    """One training run's state; `run` is the loop, the methods are its named parts."""

    def __init__(self, job: TrainingJob, run_dir: Path, reporter: Reporter):
        self.job, self.preset, self.run_dir, self.reporter = job, job.preset, run_dir, reporter
        placement = job.placement
        # split_batches: one scheduler step per optimizer step, however many processes; the
        # loop splits each global batch across the processes itself (see _synchronise).
        self.accelerator = Accelerator(
            cpu=placement.torch_device().type == "cpu",
            mixed_precision=_precision(self.preset.mixed_precision, placement, reporter),
            dataloader_config=DataLoaderConfiguration(split_batches=True))
        self.device = self.accelerator.device
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.main = self.accelerator.is_main_process
        self.step = 0
        self.memory_warned = False
        self.new_rows: dict[str, torch.nn.Parameter] = {}  # pivotal tuning's token vectors
        self.clock = _StepClock(self.device)

    def run(self) -> TrainingResult:
        job, preset, reporter, accelerator = self.job, self.preset, self.reporter, self.accelerator
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        # With several processes the first builds or downloads the model and encodes the
        # latents; the others then read them (transformers saves nothing from the others).
        with accelerator.main_process_first():
            pipe = self.pipe = self._load_pipeline()
            fingerprint = profile_fingerprint(job.profile, Path(job.models_dir))
            # Latents are encoded in fp32 whatever the training dtype (the SDXL VAE overflows
            # to NaN in fp16), so the cache is the same for every run.
            latents, encoded = cache_latents(pipe.vae, job.images,
                                             job.latent_folder(fingerprint), self.device)
        cast_quietly(pipe.vae, self.weight_dtype)
        reporter.log(f"latents: {encoded} encoded, {len(latents) - encoded} reused from cache")
        # Cached when the text encoders are frozen; pivotal tuning trains their new tokens.
        captions = [i.caption for i in job.images]
        if preset.output_preservation:
            captions += [without_trigger(c, job.trigger) for c in captions]
        embeddings = (None if preset.train_text_encoder or preset.pivotal_tokens
                      else encode_captions(pipe, job.profile.family, captions, self.device))
        torch.manual_seed(preset.seed)  # here: loading or building a model may reseed torch
        lora_params = _add_adapters(pipe, preset)
        self.new_rows = (add_new_tokens(pipe, job.trigger, preset.pivotal_tokens, preset.seed)
                         if preset.pivotal_tokens else {})
        params = lora_params + list(self.new_rows.values())
        if preset.gradient_checkpointing:
            enable_gradient_checkpointing(pipe, preset)
        optimizer = _optimizer(preset.optimizer, _param_groups(lora_params, self.new_rows, preset),
                               preset.learning_rate)
        lr_scheduler, warmup = self._lr_scheduler(optimizer)
        # The denoiser is not wrapped: the loop autocasts explicitly (accelerate's wrapper would
        # also turn its outputs to fp32 and feed them back to the validation sampler), and with
        # several processes it sums the LoRA gradients itself (_synchronise).
        optimizer, lr_scheduler = accelerator.prepare(optimizer, lr_scheduler)
        denoiser = denoiser_of(pipe)
        objective = objective_for(pipe, job.profile.family.flow_matching, preset.min_snr_gamma)
        result = TrainingResult(run_dir=self.run_dir)
        rng = random.Random(preset.seed)
        models = _lora_models(pipe, preset)
        first_epoch = self._resume(result, models, optimizer, lr_scheduler, rng,
                                   accelerator.scaler)
        tracker = Tracker(job.wandb_mode if self.main else "disabled", job.wandb_project,
                          self.run_dir, f"{job.lora}-{self.run_dir.name}", job.preset.to_dict())
        inputs = functools.partial(_model_inputs, pipe, objective, latents=latents,
                                   embeddings=embeddings, preset=preset, device=self.device,
                                   dtype=self.weight_dtype,
                                   source_sizes=job.profile.source_size_conditioning)
        validate = functools.partial(_validation_loss, pipe, denoiser, objective, job.images,
                                     latents, embeddings, self.device, self.weight_dtype,
                                     job.profile.source_size_conditioning, preset.seed,
                                     preset.batch_size)
        if not result.validation_losses and self.main:
            with accelerator.autocast():
                result.validation_losses.append(validate())
        for epoch in range(first_epoch, preset.epochs + 1):
            # One global batch per step, batch_size images per process.
            batches = bucket_batches(job.images, self.global_batch_size,
                                     preset.seed * 1000 + epoch)
            window = torch.zeros(2, device=self.device)  # loss sum, micro-batches
            for index, batch in enumerate(batches):
                with self.clock.total():
                    # Every process draws the whole batch's noise, timesteps and caption
                    # dropout (same seed), then keeps its rows: one process with the
                    # combined batch would draw the same.
                    model_inputs = inputs(batch=batch, rng=rng).rows(self.rank, self.world)
                    window[0] += self._backward(denoiser, model_inputs, embeddings,
                                                len(batch), epoch)
                    window[1] += 1
                    if (index + 1) % preset.grad_accumulation and index + 1 < len(batches):
                        continue
                    with self.clock.model():
                        self._synchronise(params, window)
                        grad_norm = accelerator.clip_grad_norm_(params, preset.max_grad_norm)
                        optimizer.step()
                        lr_scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                    self.step += 1
                    result.losses.append(float(window[0] / window[1]))
                    tracker.log(self.step, {"loss": result.losses[-1],
                                            "lr": lr_scheduler.get_last_lr()[0],
                                            "grad_norm": float(grad_norm)})
                    window = torch.zeros(2, device=self.device)
                self._check_memory()
                if preset.sample_every_n_steps and self.step % preset.sample_every_n_steps == 0:
                    self._samples(tracker)
            if not self.main:  # one writer: validation, checkpoints and state on the first
                continue
            with accelerator.autocast():
                result.validation_losses.append(validate())
            reporter.log(f"epoch {epoch}/{preset.epochs}: step {self.step}, "
                         f"loss {result.losses[-1]:.4f}, "
                         f"validation loss {result.validation_losses[-1]:.4f}")
            tracker.log(self.step, {"validation_loss": result.validation_losses[-1],
                                    "epoch": epoch})
            if epoch % preset.save_every_n_epochs == 0 or epoch == preset.epochs:
                if not preset.sample_every_n_steps:
                    self._samples(tracker)
                info = _save_checkpoint(job, accelerator, pipe, self.new_rows, self.run_dir,
                                        epoch, self.step, result.losses[-1])
                result.checkpoints.append(info)
                save_state(self.run_dir, epoch, self.step, result, models, optimizer,
                           lr_scheduler, rng, accelerator.scaler, new_rows=self.new_rows)
                reporter.log(f"checkpoint {info['file']} (epoch {epoch}, step {self.step}, "
                             f"validation loss {result.validation_losses[-1]:.4f}, "
                             f"sha256 {info['sha256'][:12]})")
        tracker.finish()
        result.main = self.main
        result.details = {
            "device": str(self.device), "mixed_precision": accelerator.mixed_precision,
            "processes": self.world,
            "optimizer_steps": self.step, "epochs": preset.epochs, "images": len(job.images),
            "latents_encoded": encoded, "warmup_steps": warmup,
            "seconds": round(time.perf_counter() - started, 1),
            "trainable_parameters": sum(p.numel() for p in params),
            "base_model": fingerprint, "base_model_revision": job.profile.revision or "",
            **self.clock.summary(),
            **_peak_memory(self.device),
        }
        if self.main:
            _write_loss_curve(result, self.run_dir)
        return result

    def _backward(self, denoiser, model_inputs: _ModelInputs, embeddings, batch_size: int,
                  epoch: int) -> float:
        """Forward and backward of this process's rows of one micro-batch; returns its loss
        (0 for a process without rows: a bucket's last batch may not reach every process)."""
        if not model_inputs.captions:
            return 0.0
        with self.clock.model(), self.accelerator.autocast():
            loss = _loss(self.pipe, denoiser, model_inputs, embeddings, self.device,
                         batch_size)
            if self.preset.output_preservation:
                drift = _drift_without_trigger(self.pipe, denoiser, model_inputs, embeddings,
                                               self.device, self.job.trigger,
                                               _lora_models(self.pipe, self.preset).values())
                loss = loss + self.preset.output_preservation * drift.sum() / batch_size
        check_finite(loss, self.step + 1, epoch, self.preset, self.accelerator.mixed_precision)
        with self.clock.model():
            self.accelerator.backward(loss / self.preset.grad_accumulation)
        return float(loss.detach())

    def _synchronise(self, params: list[torch.nn.Parameter], window: torch.Tensor) -> None:
        """With several processes: sum every LoRA gradient and the loss window across them, in
        one collective. Each process's loss is its rows' sum over the whole batch size, so
        the sum is exactly the one-process gradient of the combined batch, however unevenly
        a bucket's last batch splits (a process without rows adds zeros)."""
        if self.world == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        flat = torch.cat([window[:1], *(g.reshape(-1).float() for g in grads)])
        torch.distributed.all_reduce(flat)
        window[0] = flat[0]
        offset = 1
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    @property
    def global_batch_size(self) -> int:
        """Images per optimizer step and micro-batch: batch_size on each process."""
        return self.preset.batch_size * self.world

    @property
    def weight_dtype(self) -> torch.dtype:
        """Frozen weights in the mixed-precision dtype (half the memory); LoRA stays fp32."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
            self.accelerator.mixed_precision, torch.float32)

    def _load_pipeline(self):
        # Loaded in the training dtype (full SDXL in fp32 would take 14 GB of RAM first), the
        # VAE in fp32 for the latents.
        quantized = self.preset.base_quantization != "none"
        pipe = load_pipeline(self.job.profile, Path(self.job.models_dir), self.weight_dtype,
                             vae_dtype=torch.float32,
                             quantization=self.preset.base_quantization)
        for module in (denoiser_of(pipe), pipe.vae, *text_encoder_modules(pipe)):
            if not (quantized and module is denoiser_of(pipe)):  # loaded onto the GPU
                module.to(self.device)
            module.requires_grad_(False)
        return pipe

    def _lr_scheduler(self, optimizer):
        preset = self.preset
        # Counted from the buckets: a batch never mixes buckets, so there can be more batches
        # than images / batch size, and a schedule sized short would reach zero early.
        batches_per_epoch = len(bucket_batches(self.job.images, self.global_batch_size, 0))
        steps_per_epoch = math.ceil(batches_per_epoch / preset.grad_accumulation)
        total_steps = steps_per_epoch * preset.epochs
        warmup = min(preset.warmup_steps, total_steps // 4)
        if warmup < preset.warmup_steps:
            self.reporter.log(f"warmup shortened from {preset.warmup_steps} to {warmup} steps: "
                              f"the run has only {total_steps} optimizer steps")
        return get_scheduler(preset.lr_scheduler, optimizer, num_warmup_steps=warmup,
                             num_training_steps=total_steps,
                             num_cycles=preset.lr_num_cycles), warmup

    def _resume(self, result, models, optimizer, lr_scheduler, rng, scaler) -> int:
        """The first epoch to train: 1, or the one after the last saved state."""
        resumed = load_state(self.run_dir, models, optimizer, lr_scheduler, rng, scaler,
                             new_rows=self.new_rows)
        if not resumed:
            return 1
        self.step, result.losses = resumed.step, resumed.losses
        result.validation_losses = resumed.validation_losses
        result.checkpoints = _saved_checkpoints(self.run_dir, resumed.epoch)
        self.reporter.log(f"resuming after epoch {resumed.epoch} (step {self.step}) "
                          f"from {self.run_dir}")
        return resumed.epoch + 1

    def _samples(self, tracker: Tracker) -> None:
        if not self.job.validation_prompts or not self.main:
            return
        strip = render_samples(self.pipe, self.job.validation_prompts, self.preset.seed,
                               self.job.sample_steps, self.job.profile.resolution,
                               self.accelerator.autocast)
        path = save_samples(strip, self.run_dir, self.step)
        tracker.log_image(self.step, "validation_samples", strip,
                          " | ".join(self.job.validation_prompts))
        self.reporter.log(f"validation images at step {self.step}: {path.name}")

    def _check_memory(self) -> None:
        """Warn once when peak GPU memory nears the card's capacity."""
        if self.device.type != "cuda" or self.memory_warned:
            return
        total = torch.cuda.get_device_properties(self.device).total_memory
        warning = memory_warning(torch.cuda.max_memory_reserved(self.device), total,
                                 self.preset)
        if warning:
            self.reporter.log(f"WARNING: {warning}")
            self.memory_warned = True


class _StepClock:
    """Time spent in training steps, and the part inside the model (forward, backward,
    optimizer step). The rest is input overhead, what the latent and text caches remove."""

    def __init__(self, device: torch.device):
        self.seconds = {"total": 0.0, "model": 0.0}
        self._sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def total(self):
        return self._measure("total")

    def model(self):
        return self._measure("model")

    @contextlib.contextmanager
    def _measure(self, name: str):
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - start

    def summary(self) -> dict[str, float]:
        total = self.seconds["total"]
        return {"step_seconds": round(total, 3),
                "model_seconds": round(self.seconds["model"], 3),
                "outside_model_fraction": round(1 - self.seconds["model"] / total, 4)
                if total else 0.0}


def _peak_memory(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    return {"peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 2)}


def _precision(preset_precision: str, placement: Placement, reporter: Reporter) -> str:
    """The placement's dtype when it names one; with auto, the preset's precision where the
    GPU supports it and fp32 on the CPU (autocast there is slower, not faster)."""
    if placement.dtype != "auto":
        placement.torch_dtype()  # refuses a dtype the device lacks
        return {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}[placement.dtype]
    if placement.torch_device().type != "cuda":
        if preset_precision != "no":
            reporter.log(f"no CUDA device: training in fp32 instead of {preset_precision}")
        return "no"
    if preset_precision == "bf16" and not torch.cuda.is_bf16_supported():
        reporter.log("this GPU has no bf16: using fp16 (latents are encoded in fp32 and cached)")
        return "fp16"
    return preset_precision


def _add_adapters(pipe, preset) -> list[torch.nn.Parameter]:
    family = family_of(pipe)
    family.check_preset(preset)
    config = LoraConfig(r=preset.rank, lora_alpha=preset.alpha, init_lora_weights="gaussian",
                        target_modules=list(family.lora_targets[preset.lora_targets]))
    denoiser_of(pipe).add_adapter(config)
    models = [denoiser_of(pipe)]
    if preset.train_text_encoder:
        te_config = LoraConfig(r=preset.rank, lora_alpha=preset.alpha,
                               init_lora_weights="gaussian", target_modules=TEXT_ENCODER_TARGETS)
        for encoder in text_encoder_modules(pipe):
            encoder.add_adapter(te_config)
            models.append(encoder)
    params = [p for m in models for p in m.parameters() if p.requires_grad]
    for p in params:  # LoRA weights train in fp32 even when the base runs in half precision
        p.data = p.data.float()
    return params


def _lora_models(pipe, preset) -> dict[str, torch.nn.Module]:
    family = family_of(pipe)
    names = [family.denoiser, *(family.text_encoders if preset.train_text_encoder else ())]
    return {name: getattr(pipe, name) for name in names}



def _saved_checkpoints(run_dir: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    infos = [read_json(p) for p in sorted(run_dir.glob("epoch_*.json"))]
    return [info for info in infos if info["epoch"] <= up_to_epoch]


def _param_groups(lora_params: list[torch.nn.Parameter],
                  new_rows: dict[str, torch.nn.Parameter], preset) -> list[dict]:
    groups = [{"params": lora_params}]
    if new_rows:  # no weight decay: it would pull the new tokens towards zero, not a meaning
        groups.append({"params": list(new_rows.values()), "weight_decay": 0.0,
                       "lr": preset.embedding_learning_rate})
    return groups


def _optimizer(name: str, params: list[dict], lr: float) -> torch.optim.Optimizer:
    """`params`: parameter groups, each may set its own lr and weight_decay."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    if name == "adafactor":
        from transformers.optimization import Adafactor
        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False,
                         warmup_init=False)
    if name == "adamw8bit":
        if not torch.cuda.is_available():
            raise ValueError("optimizer adamw8bit runs only on a CUDA GPU (bitsandbytes); "
                             "use adamw or adafactor on this machine")
        try:
            import bitsandbytes as bnb
        except ImportError as exc:
            raise ValueError("optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes, "
                             "or use adamw or adafactor") from exc
        return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=1e-2)
    raise ValueError(f"unknown optimizer {name!r}: use adamw, adafactor or adamw8bit")


@dataclass
class _ModelInputs:
    noisy: torch.Tensor
    timesteps: torch.Tensor
    target: torch.Tensor
    loss_weights: torch.Tensor
    time_ids: torch.Tensor
    captions: list[str]

    def rows(self, rank: int, world: int) -> _ModelInputs:
        """Every `world`-th row from `rank`: this process's share of the batch."""
        if world == 1:
            return self
        keep = list(range(rank, len(self.captions), world))
        pick = torch.tensor(keep, dtype=torch.long, device=self.noisy.device)
        return _ModelInputs(*(t.index_select(0, pick) for t in (
            self.noisy, self.timesteps, self.target, self.loss_weights, self.time_ids)),
            captions=[self.captions[i] for i in keep])


def _model_inputs(pipe, objective, batch, rng, *, latents, embeddings, preset, device,
                  dtype, source_sizes: bool) -> _ModelInputs:
    """Everything a step needs besides the model: cached latents, noise, timesteps, target."""
    x0 = torch.stack([latents[image.key] for image in batch]).to(device)
    noise = torch.randn_like(x0)
    if preset.noise_offset:
        noise += preset.noise_offset * torch.randn(x0.shape[0], x0.shape[1], 1, 1, device=device)
    noised = objective.sample(x0, noise)
    return _ModelInputs(
        noisy=noised.noisy.to(dtype), timesteps=noised.timesteps, target=noised.target,
        loss_weights=noised.loss_weights.to(device),
        time_ids=torch.stack([time_ids(image, source_sizes) for image in batch]).to(device),
        captions=["" if rng.random() < preset.caption_dropout else image.caption
                  for image in batch])


def _loss(pipe, denoiser, inputs: _ModelInputs, embeddings, device, batch_size: int
          ) -> torch.Tensor:
    """This process's rows' loss, summed over the whole batch's size (the mean on one)."""
    prompt_embeds, pooled = _conditioning(pipe, inputs.captions, embeddings, device)
    prediction = family_of(pipe).predict(denoiser, inputs.noisy, inputs.timesteps, prompt_embeds,
                                         pooled, inputs.time_ids)
    per_sample = F.mse_loss(prediction.float(), inputs.target.float(),
                            reduction="none").mean((1, 2, 3))
    return (per_sample * inputs.loss_weights).sum() / batch_size


def _drift_without_trigger(pipe, denoiser, inputs: _ModelInputs, embeddings, device,
                           trigger: str, lora_models) -> torch.Tensor:
    """Per row: how far the LoRA moves the prediction for the same noisy latent under the
    caption without its trigger, against the base model (the LoRA off); 0 for a row whose
    caption has no trigger (caption dropout). Its gradient teaches the LoRA to do nothing
    there: output preservation."""
    plain = [without_trigger(c, trigger) for c in inputs.captions]
    rows = [i for i, (c, p) in enumerate(zip(inputs.captions, plain, strict=True)) if c != p]
    drift = torch.zeros(len(plain), device=inputs.noisy.device)
    if not rows:
        return drift
    pick = torch.tensor(rows, dtype=torch.long, device=inputs.noisy.device)
    noisy, timesteps, ids = (t.index_select(0, pick) for t in
                             (inputs.noisy, inputs.timesteps, inputs.time_ids))
    captions = [plain[i] for i in rows]
    predict = family_of(pipe).predict
    with torch.no_grad(), _adapters_off(lora_models):
        base = predict(denoiser, noisy, timesteps,
                       *_conditioning(pipe, captions, embeddings, device), ids)
    lora = predict(denoiser, noisy, timesteps, *_conditioning(pipe, captions, embeddings, device),
                   ids)
    errors = F.mse_loss(lora.float(), base.float(), reduction="none")
    return drift.index_copy(0, pick, errors.mean(dim=tuple(range(1, errors.dim()))))


@contextlib.contextmanager
def _adapters_off(models):
    """The base model: every trained model's LoRA layers bypassed, then back on."""
    models = list(models)
    for model in models:
        model.disable_adapters()
    try:
        yield
    finally:
        for model in models:
            model.enable_adapters()


def _conditioning(pipe, captions, embeddings, device
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Prompt embeddings and the pooled one (None for a family without it): from the cache
    when the text encoders are frozen, else encoded with the gradient."""
    if embeddings is None:
        return family_of(pipe).encode(pipe, captions, device)
    pooled = [embeddings[c].pooled for c in captions]
    return (torch.stack([embeddings[c].prompt_embeds for c in captions]).to(device),
            None if pooled[0] is None else torch.stack(pooled).to(device))


def enable_gradient_checkpointing(pipe, preset) -> None:
    """On every module that trains: the denoiser, and the text encoders when they train."""
    denoiser_of(pipe).enable_gradient_checkpointing()
    if preset.train_text_encoder:
        for encoder in text_encoder_modules(pipe):
            encoder.activation_checkpointing_enable()
            encoder.train()  # transformers checkpoints only in training mode (CLIP: no dropout)


@torch.no_grad()
def _validation_loss(pipe, denoiser, objective, images, latents, embeddings, device,
                     dtype: torch.dtype, source_sizes: bool, seed: int, batch_size: int
                     ) -> float:
    """Plain MSE on every image at fixed noise and evenly spread timesteps: unlike the
    per-step loss it does not jump with the random timesteps, so its trend can be read.
    Images of one bucket go through together, at most a training batch at a time."""
    generator = torch.Generator().manual_seed(seed)
    noises = [torch.randn((1, *latents[image.key].shape), generator=generator)
              for image in images]
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        by_bucket.setdefault(image.bucket, []).append(index)
    spread = max(1, len(images) - 1)
    total = 0.0
    for indices in by_bucket.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            x0 = torch.stack([latents[images[i].key] for i in chunk]).to(device)
            positions = torch.tensor([i / spread for i in chunk], dtype=torch.float64)
            noised = objective.fixed(x0, torch.cat([noises[i] for i in chunk]).to(device),
                                     positions)
            prompt_embeds, pooled = _conditioning(pipe, [images[i].caption for i in chunk],
                                                  embeddings, device)
            ids = torch.stack([time_ids(images[i], source_sizes) for i in chunk]).to(device)
            prediction = family_of(pipe).predict(denoiser, noised.noisy.to(dtype),
                                                 noised.timesteps, prompt_embeds, pooled, ids)
            errors = F.mse_loss(prediction.float(), noised.target.float(), reduction="none")
            total += errors.mean(dim=tuple(range(1, errors.dim()))).sum().item()
    return total / len(images)


def _save_checkpoint(job, accelerator, pipe, new_rows: dict[str, torch.nn.Parameter],
                     run_dir: Path, epoch: int, step: int, loss: float) -> dict[str, Any]:
    """The LoRA in the family's naming, with the pivotal tokens' vectors bundled in."""
    state = {name: get_peft_model_state_dict(accelerator.unwrap_model(model))
             for name, model in _lora_models(pipe, job.preset).items()}
    path = run_dir / f"epoch_{epoch:04d}.safetensors"
    metadata = {**job.export_metadata, "bioart.epoch": str(epoch), "bioart.step": str(step),
                "modelspec.date": datetime.now(UTC).date().isoformat()}
    family = job.profile.family
    tensors = {**lora_state_dict(state, job.preset.alpha, family),
               **bundled(job.trigger, new_rows, family)}
    write_lora(path, tensors, metadata)
    info = {"epoch": epoch, "step": step, "loss": round(loss, 6), "file": path.name,
            "sha256": sha256_file(path)}
    atomic_write_json(path.with_suffix(".json"), info)
    return info


def _write_loss_curve(result: TrainingResult, run_dir: Path) -> None:
    """Validation loss per epoch on top (the trend), per-step training loss below."""
    validation = line_chart(result.validation_losses,
                            "validation loss (fixed noise and timesteps; blue: checkpoints)",
                            x_label="epoch (0 = before training)", y_label="loss",
                            marks=[c["epoch"] for c in result.checkpoints])
    steps = line_chart(result.losses, "training loss per optimizer step (blue: checkpoints)",
                       x_label="optimizer step", y_label="loss",
                       marks=[c["step"] - 1 for c in result.checkpoints])
    chart = Image.new("RGB", (validation.width, validation.height + steps.height), "white")
    chart.paste(validation, (0, 0))
    chart.paste(steps, (0, validation.height))
    with atomic_path(run_dir / "loss.png") as tmp:
        chart.save(tmp, format="PNG")
