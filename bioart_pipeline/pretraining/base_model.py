"""`bioart build-base`: pretrain an embedded base model on the CPU: tiny SDXL (`--family
sdxl`, the default) or tiny SD 1.5 (`--family sd15`), same corpus, schedule and settings.

Stages, each resumable from its last checkpoint in the work folder (a killed run continues
where it stopped; the same seed and settings give the same weights):
1. `vae` (SDXL; SD 1.5 reuses that VAE, same architecture): the autoencoder learns to
   reconstruct random crops of corpus images and of colour swatches spread over the whole RGB
   cube, so colours the corpus never uses (a studio's palette) still survive encoding; it
   decodes the posterior mean (deterministic);
2. `encode`: the corpus encoded once (posterior mean, as training caches it) and every caption
   embedded by the frozen text encoders, which stay at their seeded initialisation;
3. `unet`: text-conditioned denoising on those latents (the family's noise schedule and
   epsilon objective, min-SNR weighting, exponential moving average of the weights);
4. `export`: the EMA UNet (and the VAE it trained) as safetensors into the package's weights
   folder, with `build.json` (sha256 of each file, settings, command, figures) and a sample
   sheet.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from bioart_pipeline.common.files import (
    atomic_dir,
    atomic_path,
    atomic_write_json,
    read_json,
    sha256_file,
)
from bioart_pipeline.evaluation.metrics import srgb_to_lab
from bioart_pipeline.models import builtin, tiny_flux, tiny_sd15, tiny_sdxl
from bioart_pipeline.models.families import (
    FAMILIES,
    FLUX_TRAINING_GUIDANCE,
    Family,
    family_of,
)
from bioart_pipeline.pretraining.corpus import COLOURS, INK, PAPER, PARTS, corpus_item
from bioart_pipeline.training.objectives import objective_for
from bioart_pipeline.training.state import (
    restore_optimizer,
    rng_from_json,
    rng_to_json,
    split_optimizer,
)

SAMPLE_PROMPTS = (
    "cross-section of an animal cell with nucleus and mitochondria",
    "a neuron with dendrites and an axon",
    "a mitochondrion with cristae, cross-section",
    "a plant cell with a cell wall, a large central vacuole and chloroplasts",
    "a red circle",
    "two shapes: a blue square and a yellow triangle",
)


@dataclass(frozen=True)
class BaseSettings:
    """Every knob of the pretraining; recorded in build.json."""

    seed: int = 0
    corpus_size: int = 6000
    vae_steps: int = 3000
    vae_batch: int = 16
    vae_crop: int = 64
    vae_learning_rate: float = 1e-3
    kl_weight: float = 1e-6
    swatch_fraction: float = 0.35
    unet_steps: int = 4000
    unet_batch: int = 24
    unet_learning_rate: float = 1e-3
    unet_warmup: int = 200
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    noise_offset: float = 0.05
    min_snr_gamma: float = 5.0
    checkpoint_every: int = 100
    sample_every: int = 500
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)


@dataclass(frozen=True)
class Target:
    """What build-base pretrains for one family, and where the weights go."""

    family: Family
    version: str
    out: Path  # the package's weights folder for the family
    random_denoiser: Callable[[], torch.nn.Module]  # the UNet or transformer's seeded start
    random_pipeline: Callable[[Path], Path]  # writes the pipeline at its seeded start
    text_encoders: Callable[[], tuple[torch.nn.Module, ...]]
    # False: the pipeline's VAE is textbook-tiny's (same architecture), not trained again
    trains_vae: bool = True
    readme: str = "BASE_MODEL.md"  # beside this file; the weights folder's README.md
    # What the family's pipeline needs before it can be built (Flux: its T5 vocabulary,
    # trained once when missing, then committed).
    prepare: Callable[[], object] | None = None
    settings: Mapping[str, object] = field(default_factory=dict)  # the family's own defaults


TARGETS = {
    "sdxl": Target(FAMILIES["sdxl"], builtin.TINY_VERSION, tiny_sdxl.PRETRAINED_DIR,
                   tiny_sdxl.random_unet,
                   lambda folder: tiny_sdxl.build_tiny_sdxl(folder, pretrained=False),
                   tiny_sdxl.text_encoders),
    "sd15": Target(FAMILIES["sd15"], builtin.TINY_SD15_VERSION, tiny_sd15.PRETRAINED_DIR,
                   tiny_sd15.random_unet,
                   lambda folder: tiny_sd15.build_tiny_sd15(folder, pretrained=False),
                   lambda: (tiny_sd15.text_encoder(),), trains_vae=False,
                   readme="BASE_MODEL_SD15.md"),
    "flux": Target(FAMILIES["flux"], builtin.TINY_FLUX_VERSION, tiny_flux.PRETRAINED_DIR,
                   tiny_flux.random_transformer,
                   lambda folder: tiny_flux.build_tiny_flux(folder, pretrained=False),
                   tiny_flux.text_encoders, trains_vae=False, readme="BASE_MODEL_FLUX.md",
                   prepare=lambda: tiny_flux.T5_VOCABULARY.exists()
                   or write_t5_vocabulary(tiny_flux.T5_VOCABULARY),
                   # 1.6 s a step on 2 cores (512 T5 tokens a caption): 3000 steps, 80 minutes
                   settings={"unet_steps": 3000}),
}


def write_t5_vocabulary(path: Path, captions: int = 1000, size: int = tiny_flux.T5_VOCAB
                        ) -> Path:
    """A T5-form Unigram vocabulary (<pad> 0, </s> 1, <unk> 2; every printable ASCII character
    a piece) trained on the first `captions` corpus captions, as tiny_flux.t5_tokenizer reads
    it. Scores rounded: the trainer's last digits vary with thread timing."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(
        [corpus_item(0, i).caption for i in range(captions)], trainers.UnigramTrainer(
            vocab_size=size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
            initial_alphabet=[chr(c) for c in range(32, 127)], shrinking_factor=0.75))
    vocab = [(piece, round(score, 6))
             for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]]
    return atomic_write_json(path, vocab)


# --- work folder ------------------------------------------------------------------------------

class Stage:
    """One stage's resumable state in `work/<name>/`: model tensors, optimizer, step, log."""

    def __init__(self, work: Path, name: str):
        self.folder = work / name

    def load(self, models: dict[str, torch.nn.Module], optimizer) -> dict:
        meta_file = self.folder / "state.json"
        if not meta_file.exists():
            return {"step": 0, "losses": []}
        meta = read_json(meta_file)
        tensors = load_file(str(self.folder / "tensors.safetensors"))
        for name, model in models.items():
            prefix = f"{name}."
            model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                   if k.startswith(prefix)})
        restore_optimizer(optimizer, tensors, meta)
        torch.set_rng_state(tensors["torch_rng"])
        random.setstate(rng_from_json(meta["python_rng"]))
        return meta

    def save(self, models: dict[str, torch.nn.Module], optimizer, meta: dict) -> None:
        with atomic_dir(self.folder) as tmp:
            tensors, optimizer_meta = split_optimizer(optimizer)
            for name, model in models.items():
                tensors.update({f"{name}.{k}": v.detach().contiguous()
                                for k, v in model.state_dict().items()})
            tensors["torch_rng"] = torch.get_rng_state()
            save_file(tensors, str(tmp / "tensors.safetensors"))
            atomic_write_json(tmp / "state.json", {**meta, **optimizer_meta,
                                                   "python_rng": rng_to_json(random.getstate())})


def _cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)


def _to_image(tensor: torch.Tensor) -> Image.Image:
    array = ((tensor.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


# --- 1. the autoencoder -----------------------------------------------------------------------

def swatch(rng, size: int) -> Image.Image:
    """Random colours from the whole RGB cube: flat shapes, outlines of random weight, on a
    random ground that is often near white or near black (the corpus's cream paper must not
    become the only background the decoder can draw)."""
    def colour():
        return tuple(rng.randrange(256) for _ in range(3))

    def ground():
        kind = rng.random()
        if kind < 0.3:
            return tuple(rng.randrange(236, 256) for _ in range(3))
        if kind < 0.4:
            return tuple(rng.randrange(0, 30) for _ in range(3))
        return colour()
    image = Image.new("RGB", (size * 4, size * 4), ground())
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        x, y = rng.uniform(0, size * 4), rng.uniform(0, size * 4)
        r = rng.uniform(size * 0.3, size * 1.6)
        box = (x - r, y - r * rng.uniform(0.5, 1), x + r, y + r * rng.uniform(0.5, 1))
        draw.ellipse(box, fill=colour(), outline=colour(), width=rng.randint(0, 16))
    return image.resize((size, size), Image.Resampling.BOX)


def _vae_batch(settings: BaseSettings) -> torch.Tensor:
    crops = []
    for _ in range(settings.vae_batch):
        if random.random() < settings.swatch_fraction:
            crops.append(_to_tensor(swatch(random, settings.vae_crop)))
            continue
        image = corpus_item(settings.seed, random.randrange(settings.corpus_size)).image
        x = random.randrange(image.width - settings.vae_crop + 1)
        y = random.randrange(image.height - settings.vae_crop + 1)
        crops.append(_to_tensor(image.crop((x, y, x + settings.vae_crop,
                                            y + settings.vae_crop))))
    return torch.stack(crops)


def train_vae(work: Path, settings: BaseSettings, log) -> torch.nn.Module:
    vae = tiny_sdxl.random_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=settings.vae_learning_rate,
                                  weight_decay=0.0)
    stage = Stage(work, "vae")
    random.seed(settings.seed + 1)
    torch.manual_seed(settings.seed + 1)
    meta = stage.load({"vae": vae}, optimizer)  # restores both generators when resuming
    step, losses = meta["step"], meta["losses"]
    vae.train()
    progress = tqdm(range(step, settings.vae_steps), desc="vae", unit="step", initial=step,
                    total=settings.vae_steps)
    for step in progress:
        for group in optimizer.param_groups:
            group["lr"] = _cosine_lr(step, settings.vae_steps, settings.vae_learning_rate, 100)
        batch = _vae_batch(settings)
        posterior = vae.encode(batch).latent_dist
        # Decoded from the mean, as training encodes (cache_latents): decoding unit-variance
        # samples drowned colour, leaving only a blue-orange axis (mean Delta E 44).
        reconstruction = vae.decode(posterior.mean).sample
        l1 = F.l1_loss(reconstruction, batch)
        loss = l1 + F.mse_loss(reconstruction, batch) + settings.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        losses.append(round(l1.item(), 5))
        progress.set_postfix(l1=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.vae_steps:
            stage.save({"vae": vae}, optimizer, {"step": step + 1, "losses": losses})
            log(f"vae step {step + 1}: l1 {np.mean(losses[-50:]):.4f}")
    vae.eval()
    return vae


@torch.no_grad()
def vae_report(vae: torch.nn.Module, settings: BaseSettings) -> dict:
    """PSNR on held-out corpus images, and how well colours survive: each named colour, each
    part colour and a 5x5x5 grid over the RGB cube, drawn as an outlined disc on paper, on
    white and on near black, compared (CIE76 Delta E in Lab) with the centre of its
    reconstruction; the ground itself is compared too, from the corners."""
    def round_trip(image: Image.Image) -> np.ndarray:
        out = vae.decode(vae.encode(_to_tensor(image)[None]).latent_dist.mean).sample[0]
        return np.asarray(_to_image(out), dtype=np.float64)

    psnr = []
    for i in range(32):
        image = corpus_item(settings.seed + 1, i).image
        mse = np.mean((round_trip(image) - np.asarray(image, dtype=np.float64)) ** 2) / 255**2
        psnr.append(10 * math.log10(1 / max(mse, 1e-10)))
    levels = (0, 64, 128, 192, 255)
    colours = [*COLOURS.values(), *PARTS.values(),
               *((r, g, b) for r in levels for g in levels for b in levels)]
    errors, ground_errors = [], []
    for background in (PAPER, (255, 255, 255), (16, 16, 16)):
        for colour in colours:
            disc = Image.new("RGB", (128, 128), background)
            ImageDraw.Draw(disc).ellipse((24, 24, 104, 104), fill=colour, outline=INK, width=2)
            out = round_trip(disc)
            errors.append(_delta_e(out[48:80, 48:80], colour))
            ground_errors.append(_delta_e(out[:12, :12], background))
    return {"psnr_db": round(float(np.mean(psnr)), 2),
            "colour_error_mean_delta_e": round(float(np.mean(errors)), 2),
            "colour_error_p90_delta_e": round(float(np.quantile(errors, 0.9)), 2),
            "colour_error_max_delta_e": round(float(np.max(errors)), 2),
            "ground_error_max_delta_e": round(float(np.max(ground_errors)), 2)}


def _delta_e(region: np.ndarray, colour: tuple[int, int, int]) -> float:
    """CIE76 colour difference between a region's mean colour and `colour` (both 0..255)."""
    mean = region.reshape(-1, 3).mean(0)
    lab = srgb_to_lab(np.stack([mean, np.array(colour, dtype=np.float64)]) / 255)
    return float(np.linalg.norm(lab[0] - lab[1]))


# --- 2. latents and caption embeddings --------------------------------------------------------

@torch.no_grad()
def encode_corpus(work: Path, settings: BaseSettings, vae, pipe, log) -> dict:
    """Latents grouped by image size, caption embeddings by index; cached in the work folder."""
    path = work / "encoded.safetensors"
    if path.exists():
        return load_file(str(path))
    by_size: dict[tuple[int, int], list[int]] = {}
    items = [corpus_item(settings.seed, i) for i in tqdm(range(settings.corpus_size),
                                                         desc="draw corpus")]
    for index, item in enumerate(items):
        by_size.setdefault(item.image.size, []).append(index)
    tensors: dict[str, torch.Tensor] = {}
    for (width, height), indices in by_size.items():
        latents = [vae.encode(torch.stack([_to_tensor(items[i].image) for i in chunk])
                              ).latent_dist.mean
                   for chunk in _chunks(indices, 64)]
        tensors[f"latents.{width}x{height}"] = torch.cat(latents)
        tensors[f"index.{width}x{height}"] = torch.tensor(indices)
    embeds, pooled = [], []
    family = family_of(pipe)
    for chunk in tqdm(list(_chunks(range(settings.corpus_size), 64)), desc="embed captions"):
        e, p = family.encode(pipe, [items[i].caption for i in chunk], torch.device("cpu"))
        embeds.append(e.half())
        pooled += [p] if p is not None else []
    tensors["prompt_embeds"] = torch.cat(embeds)
    if pooled:
        tensors["pooled"] = torch.cat(pooled)
    # What a dropped caption becomes: the unconditional branch of classifier-free guidance,
    # zeros where the pipeline forces them for an empty prompt (SDXL), else ""'s embedding.
    if not getattr(pipe.config, "force_zeros_for_empty_prompt", False):
        empty, empty_pooled = family.encode(pipe, [""], torch.device("cpu"))
        tensors["empty_prompt_embeds"] = empty[0]
        if empty_pooled is not None:  # Flux: CLIP's pooled vector of ""
            tensors["empty_pooled"] = empty_pooled[0]
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    (work / "captions.json").write_text(json.dumps([i.caption for i in items], indent=0))
    log(f"encoded {len(items)} corpus images in {len(by_size)} sizes")
    return tensors


def _chunks(seq, n: int):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# --- 3. the UNet (or the transformer) ---------------------------------------------------------

def train_denoiser(work: Path, settings: BaseSettings, encoded: dict, vae, pipe,
                   target: Target, log) -> torch.nn.Module:
    """Text-conditioned denoising with the family's objective (objectives.py, as LoRA
    training uses it); returns the exponential moving average of the weights."""
    family = target.family
    unet = target.random_denoiser()
    ema = target.random_denoiser()
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=settings.unet_learning_rate,
                                  weight_decay=1e-2)
    stage = Stage(work, family.denoiser)
    random.seed(settings.seed + 2)
    torch.manual_seed(settings.seed + 2)
    meta = stage.load({"unet": unet, "ema": ema}, optimizer)  # restores both generators
    step, losses = meta["step"], meta["losses"]
    objective = objective_for(pipe, family.flow_matching, settings.min_snr_gamma)
    latent_space = (vae.config.get("shift_factor") or 0.0, vae.config.scaling_factor)
    sizes = sorted(k.split(".", 1)[1] for k in encoded if k.startswith("latents."))
    weights = [len(encoded[f"index.{s}"]) for s in sizes]
    unet.train()
    progress = tqdm(range(step, settings.unet_steps), desc=family.denoiser, unit="step",
                    initial=step, total=settings.unet_steps)
    for step in progress:
        for group in optimizer.param_groups:
            group["lr"] = _cosine_lr(step, settings.unet_steps, settings.unet_learning_rate,
                                     settings.unet_warmup)
        size = random.choices(sizes, weights)[0]
        loss = _denoiser_loss(unet, family, objective, encoded, size, settings, latent_space)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        decay = min(settings.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(round(loss.item(), 5))
        progress.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}")
        done = step + 1
        if done % settings.checkpoint_every == 0 or done == settings.unet_steps:
            stage.save({"unet": unet, "ema": ema}, optimizer, {"step": done, "losses": losses})
            log(f"{family.denoiser} step {done}: loss {np.mean(losses[-100:]):.4f}")
        if done % settings.sample_every == 0 or done == settings.unet_steps:
            setattr(pipe, family.denoiser, ema)
            sample_sheet(pipe, 1).save(work / f"samples_{done:05d}.png")
    return ema


def _denoiser_loss(denoiser, family: Family, objective, encoded: dict, size: str,
                   settings: BaseSettings, latent_space: tuple[float, float]) -> torch.Tensor:
    shift, scaling_factor = latent_space  # Flux's VAE shifts its latents before scaling
    pool = encoded[f"latents.{size}"]
    picks = torch.randint(0, len(pool), (settings.unet_batch,))
    x0 = (pool[picks] - shift) * scaling_factor
    caption_index = encoded[f"index.{size}"][picks]
    prompt_embeds = encoded["prompt_embeds"][caption_index].float()
    pooled = encoded["pooled"][caption_index].float() if "pooled" in encoded else None
    # Dropped captions get what the pipeline feeds the unconditional branch of guidance.
    keep = (torch.rand(len(picks)) >= settings.caption_dropout).float()
    empty = encoded.get("empty_prompt_embeds", torch.zeros(()))
    prompt_embeds = prompt_embeds * keep[:, None, None] + empty * (1 - keep[:, None, None])
    if pooled is not None:
        empty_pooled = encoded.get("empty_pooled", torch.zeros(()))
        pooled = pooled * keep[:, None] + empty_pooled * (1 - keep[:, None])
    noise = torch.randn_like(x0) + settings.noise_offset * torch.randn(len(picks), x0.shape[1],
                                                                       1, 1)
    noised = objective.sample(x0, noise)
    width, height = (int(v) for v in size.split("x"))
    time_ids = torch.tensor([height, width, 0, 0, height, width], dtype=torch.float32)
    prediction = family.predict(denoiser, noised.noisy, noised.timesteps, prompt_embeds, pooled,
                                time_ids.expand(len(picks), 6))
    per_sample = F.mse_loss(prediction, noised.target, reduction="none").mean((1, 2, 3))
    return (per_sample * noised.loss_weights).mean()


def guidance_options(pipe, batch: int, scale: float = 5.0) -> dict:
    """Classifier-free guidance at `scale` for any family. A Flux base pretrained here has no
    distilled guidance (that needs a teacher): it is sampled with true CFG against the empty
    caption its dropped captions trained, at the guidance value it was trained with."""
    family = family_of(pipe)
    if family.flow_matching:
        return family.guidance_options(FLUX_TRAINING_GUIDANCE, scale, batch)
    return family.guidance_options(scale, 1.0, batch)


@torch.no_grad()
def sample_sheet(pipe, seeds: int = 2, prompts: tuple[str, ...] = SAMPLE_PROMPTS,
                 steps: int = 20) -> Image.Image:
    """The sample prompts x seeds, as the pipeline renders them (with prompt labels)."""
    size, label = 128, 12
    sheet = Image.new("RGB", (size * len(prompts), (size + label) * seeds), "white")
    draw = ImageDraw.Draw(sheet)
    for seed in range(seeds):
        images = pipe(prompt=list(prompts), num_inference_steps=steps, height=size, width=size,
                      **guidance_options(pipe, len(prompts)),
                      generator=[torch.Generator().manual_seed(seed) for _ in prompts]).images
        for column, (prompt, image) in enumerate(zip(prompts, images, strict=True)):
            top = seed * (size + label)
            sheet.paste(image, (column * size, top + label))
            draw.text((column * size + 2, top), prompt[:24], fill="black")
    return sheet


# --- 4. export --------------------------------------------------------------------------------

def export(out: Path, denoiser, vae, settings: BaseSettings, figures: dict, pipe,
           target: Target) -> None:
    """The UNet or transformer (+ the VAE it trained) as safetensors with their configs,
    build.json, and a sample sheet."""
    with atomic_dir(out) as tmp:
        denoiser.save_pretrained(tmp / target.family.denoiser, safe_serialization=True)
        if target.trains_vae:
            vae.save_pretrained(tmp / "vae", safe_serialization=True)
        setattr(pipe, target.family.denoiser, denoiser)
        pipe.vae = vae
        sample_sheet(pipe, 2).save(tmp / "samples.png")
        shutil.copy(Path(__file__).parent / target.readme, tmp / "README.md")
        files = sorted(p for p in tmp.rglob("*.safetensors"))
        atomic_write_json(tmp / "build.json", {
            "model": target.version,
            "command": f"bioart build-base --family {target.family.name}",
            "settings": {k: v for k, v in asdict(settings).items() if k != "threads"},
            "figures": figures,
            "sha256": {p.relative_to(tmp).as_posix(): sha256_file(p) for p in files},
            "text_encoders_digest": tiny_sdxl.weights_digest(*target.text_encoders()),
            "torch": torch.__version__,
        })


def build_base(work: Path, out: Path, settings: BaseSettings, target: Target = TARGETS["sdxl"]
               ) -> dict:
    """Run (or resume) every stage; returns the figures written to build.json."""
    torch.set_num_threads(settings.threads)
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / "log.txt"

    def log(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        tqdm.write(line)
        with log_file.open("a") as fh:
            fh.write(line + "\n")

    started = time.perf_counter()
    if target.prepare is not None:
        target.prepare()
    pipe = target.family.pipeline.from_pretrained(target.random_pipeline(work / "random"),
                                                  **target.family.load_options)
    pipe.set_progress_bar_config(disable=True)
    if target.trains_vae:
        vae = train_vae(work, settings, log)
        figures = {"vae": vae_report(vae, settings)}
    else:
        vae = pipe.vae
        figures = {"vae": {"reused": tiny_sdxl.PRETRAINED_DIR.name,
                           "scaling_factor": vae.config.scaling_factor}}
    log(f"vae: {figures['vae']}")
    encoded = encode_corpus(work, settings, vae, pipe, log)
    latents = torch.cat([v.flatten() for k, v in encoded.items() if k.startswith("latents.")])
    if target.trains_vae:
        vae.register_to_config(scaling_factor=round(1.0 / latents.std().item(), 5))
    scaled = (latents - (vae.config.get("shift_factor") or 0.0)) * vae.config.scaling_factor
    pipe.vae = vae
    figures["vae"].update(scaled_latent_mean=round(scaled.mean().item(), 3),
                          scaled_latent_std=round(scaled.std().item(), 3))
    denoiser = train_denoiser(work, settings, encoded, vae, pipe, target, log)
    name = target.family.denoiser
    losses = read_json(work / name / "state.json")["losses"]
    figures[name] = {"final_loss_mean_of_last_200": round(float(np.mean(losses[-200:])), 4)}
    figures["seconds_this_run"] = round(time.perf_counter() - started)
    export(out, denoiser, vae, settings, figures, pipe, target)
    log(f"exported to {out}: {figures}")
    return figures


def settings_for(target: Target, flags: Mapping[str, object]) -> BaseSettings:
    """The defaults, then the family's own, then the flags given (None: not given)."""
    given = {name: value for name, value in flags.items() if value is not None}
    return replace(BaseSettings(), **{**target.settings, **given})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bioart build-base", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(TARGETS), default="sdxl",
                        help="the architecture to pretrain")
    parser.add_argument("--work", type=Path, default=None,
                        help="checkpoints and caches, resumed from when present (default: "
                             "data/outputs/base_model_work, with _<family> but for sdxl)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the weights go (default: the family's package folder)")
    for name, value in asdict(BaseSettings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None,
                            help=f"default {value}, unless the family has its own")
    args = vars(parser.parse_args(argv))
    target = TARGETS[args.pop("family")]
    suffix = "" if target.family.name == "sdxl" else f"_{target.family.name}"
    work = args.pop("work") or Path(f"data/outputs/base_model_work{suffix}")
    out = args.pop("out") or target.out
    build_base(work, out, settings_for(target, args), target)
    return 0
