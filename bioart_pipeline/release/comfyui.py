"""What an artist loads to draw with a released LoRA at its approved weight, with the XY plot's
sampling settings: a ComfyUI workflow (API format, core nodes only) and an A1111 prompt line
(Forge's, for Flux: A1111 has no Flux).

Same settings, not the same pixels: ComfyUI and A1111 draw their starting noise their own way,
so the seed gives a different (equally valid) image than the grid's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

WORKFLOW = "comfyui_workflow.json"
# The file a hub base model is published as, under ComfyUI's models/checkpoints (Flux: its
# transformer under models/diffusion_models).
HUB_CHECKPOINT_FILES = {
    "stabilityai/stable-diffusion-xl-base-1.0": "sd_xl_base_1.0.safetensors",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "v1-5-pruned-emaonly.safetensors",
    "black-forest-labs/FLUX.1-dev": "flux1-dev.safetensors",
    "black-forest-labs/FLUX.1-schnell": "flux1-schnell.safetensors",
}
# Flux's other parts as ComfyUI's Flux example names them (models/text_encoders, models/vae).
FLUX_FILES = {"clip_l": "clip_l.safetensors", "t5": "t5xxl_fp16.safetensors",
              "vae": "ae.safetensors"}
# The XY plot samples SD with diffusers' EulerDiscreteScheduler (SDXL's own, set for SD 1.5
# too): ComfyUI's euler sampler on its normal schedule, A1111's Euler. Flux samples with its
# flow-matching Euler: ComfyUI's euler on the simple schedule, the distilled guidance in
# FluxGuidance and the KSampler's CFG at the XY plot's true_cfg_scale (1: off, the usual).
COMFYUI_SAMPLER, COMFYUI_SCHEDULER, A1111_SAMPLER = "euler", "normal", "Euler"
FLUX_SCHEDULER = "simple"


@dataclass(frozen=True)
class DrawSettings:
    checkpoint: str  # the base model's file name in ComfyUI's models/checkpoints
    lora_file: str  # the released file name, as it sits in models/loras
    weight: float
    prompt: str  # with the trigger word
    negative: str
    steps: int
    cfg: float
    seed: int
    size: int
    # A pivotal-tuning embedding's name (= its file's stem and the trigger word), or "".
    embedding: str = ""
    family: str = "sdxl"  # the base's family: Flux loads and samples differently
    true_cfg: float = 1.0  # Flux: classifier-free guidance beside the distilled `cfg`


def checkpoint_file_name(source: str) -> str:
    """The base model as a ComfyUI checkpoint file name: the published file of a known hub
    model, a single file's own name, else the source's last part with .safetensors."""
    repo = source.split("@", 1)[0]
    if repo in HUB_CHECKPOINT_FILES:
        return HUB_CHECKPOINT_FILES[repo]
    name = PurePath(repo.removeprefix("builtin:")).name
    return name if name.endswith(".safetensors") else f"{name}.safetensors"


def comfyui_workflow(settings: DrawSettings) -> dict:
    """The API-format prompt graph: node id -> class_type and inputs, a link being
    [node id, output index]."""
    return _flux_graph(settings) if settings.family == "flux" else _checkpoint_graph(settings)


def _checkpoint_graph(s: DrawSettings) -> dict:
    """SD 1.5 and SDXL: one checkpoint file holds UNet, text encoders and VAE."""
    return {
        "1": _node("CheckpointLoaderSimple", "Base model", ckpt_name=s.checkpoint),
        "2": _node("LoraLoader", "LoRA at its approved weight", model=["1", 0], clip=["1", 1],
                   lora_name=s.lora_file, strength_model=s.weight, strength_clip=s.weight),
        "3": _node("CLIPTextEncode", "Prompt (with the trigger word)",
                   text=comfyui_prompt(s.prompt, s.embedding), clip=["2", 1]),
        "4": _node("CLIPTextEncode", "Negative prompt", text=s.negative, clip=["2", 1]),
        "5": _node("EmptyLatentImage", "Size", width=s.size, height=s.size, batch_size=1),
        "6": _node("KSampler", "Sampler (the XY plot's settings)", model=["2", 0],
                   positive=["3", 0], negative=["4", 0], latent_image=["5", 0], seed=s.seed,
                   steps=s.steps, cfg=s.cfg, sampler_name=COMFYUI_SAMPLER,
                   scheduler=COMFYUI_SCHEDULER, denoise=1.0),
        "7": _node("VAEDecode", "Decode", samples=["6", 0], vae=["1", 2]),
        "8": _node("SaveImage", "Save", images=["7", 0],
                   filename_prefix=PurePath(s.lora_file).stem),
    }


def _flux_graph(s: DrawSettings) -> dict:
    """Flux: the transformer, the two text encoders and the VAE are separate files; the LoRA
    patches the transformer only; the distilled guidance is a conditioning value."""
    return {
        "1": _node("UNETLoader", "Flux transformer", unet_name=s.checkpoint,
                   weight_dtype="default"),
        "2": _node("DualCLIPLoader", "CLIP-L and T5", clip_name1=FLUX_FILES["clip_l"],
                   clip_name2=FLUX_FILES["t5"], type="flux"),
        "3": _node("VAELoader", "Flux VAE", vae_name=FLUX_FILES["vae"]),
        "4": _node("LoraLoaderModelOnly", "LoRA at its approved weight", model=["1", 0],
                   lora_name=s.lora_file, strength_model=s.weight),
        "5": _node("CLIPTextEncode", "Prompt (with the trigger word)", text=s.prompt,
                   clip=["2", 0]),
        "6": _node("FluxGuidance", "Distilled guidance (the XY plot's)", conditioning=["5", 0],
                   guidance=s.cfg),
        "7": _node("CLIPTextEncode", "Negative prompt (used at a CFG above 1)", text=s.negative,
                   clip=["2", 0]),
        "8": _node("EmptySD3LatentImage", "Size", width=s.size, height=s.size, batch_size=1),
        "9": _node("KSampler", "Sampler (the XY plot's settings)", model=["4", 0],
                   positive=["6", 0], negative=["7", 0], latent_image=["8", 0], seed=s.seed,
                   steps=s.steps, cfg=s.true_cfg, sampler_name=COMFYUI_SAMPLER,
                   scheduler=FLUX_SCHEDULER, denoise=1.0),
        "10": _node("VAEDecode", "Decode", samples=["9", 0], vae=["3", 0]),
        "11": _node("SaveImage", "Save", images=["10", 0],
                    filename_prefix=PurePath(s.lora_file).stem),
    }


def comfyui_prompt(prompt: str, embedding: str) -> str:
    """ComfyUI reads an embedding only as a space-separated word `embedding:<file name>`
    (comfy/sd1_clip.py strips trailing commas, weights come off before); A1111 reads the name
    itself, which is the trigger word. Only the trigger as a whole word is written so: not
    inside a longer word, not a second time after `embedding:`."""
    if not embedding:
        return prompt
    whole_word = re.compile(rf"(^|[\s(,]){re.escape(embedding)}(?![\w-])")
    return whole_word.sub(
        lambda m: f"{m[1]}{' ' if m[1] == ',' else ''}embedding:{embedding}", prompt)


def _node(class_type: str, title: str, **inputs: object) -> dict:
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def a1111_infotext(settings: DrawSettings) -> str:
    """The same settings as A1111's generation parameters (paste into the prompt box and use
    the arrow under Generate to fill in every field)."""
    s = settings
    lora = f"<lora:{PurePath(s.lora_file).stem}:{s.weight:g}>"
    guidance = (f"Schedule type: Simple, CFG scale: {s.true_cfg:g}, Distilled CFG Scale: {s.cfg:g}"
                if s.family == "flux" else f"CFG scale: {s.cfg:g}")
    return "\n".join([
        f"{s.prompt} {lora}",
        *([f"Negative prompt: {s.negative}"] if s.negative else []),
        f"Steps: {s.steps}, Sampler: {A1111_SAMPLER}, {guidance}, Seed: {s.seed}, "
        f"Size: {s.size}x{s.size}"])
