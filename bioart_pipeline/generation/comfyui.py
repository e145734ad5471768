"""A recipe as the tools artists draw in read it: a ComfyUI workflow (API format, core nodes
only, one LoRA loader per LoRA in the recipe's order) and an A1111 prompt line (Forge's, for
Flux: A1111 has no Flux). A release ships its approved recipe so.

Same settings, not the same pixels: ComfyUI and A1111 draw their starting noise their own way,
so the seed gives a different (equally valid) image than the renderer's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from bioart_pipeline.generation.recipe import Recipe

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
# The renderer samples SD with diffusers' EulerDiscreteScheduler (SDXL's own, set for SD 1.5
# too): ComfyUI's euler sampler on its normal schedule, A1111's Euler. Flux samples with its
# flow-matching Euler: ComfyUI's euler on the simple schedule, the distilled guidance in
# FluxGuidance and the KSampler's CFG at the recipe's true_cfg_scale (1: off, the usual).
COMFYUI_SAMPLER, COMFYUI_SCHEDULER, A1111_SAMPLER = "euler", "normal", "Euler"
FLUX_SCHEDULER = "simple"


@dataclass(frozen=True)
class ComfyFiles:
    """The files a recipe draws with, as they sit in ComfyUI's models folders."""

    checkpoint: str  # the base model's file in models/checkpoints (Flux: diffusion_models)
    loras: Mapping[str, str]  # the recipe's adapter name -> its file in models/loras
    # Pivotal-tuning embeddings (file stem = trigger word) in models/embeddings.
    embeddings: tuple[str, ...] = ()
    family: str = "sdxl"  # the base's family: Flux loads and samples differently


def checkpoint_file_name(source: str) -> str:
    """The base model as a ComfyUI checkpoint file name: the published file of a known hub
    model, a single file's own name, else the source's last part with .safetensors."""
    repo = source.split("@", 1)[0]
    if repo in HUB_CHECKPOINT_FILES:
        return HUB_CHECKPOINT_FILES[repo]
    name = PurePath(repo.removeprefix("builtin:")).name
    return name if name.endswith(".safetensors") else f"{name}.safetensors"


def comfyui_workflow(recipe: Recipe, files: ComfyFiles) -> dict:
    """The API-format prompt graph: node id -> class_type and inputs, a link being
    [node id, output index]."""
    graph = _flux_graph if files.family == "flux" else _checkpoint_graph
    return {str(i): node for i, node in enumerate(graph(recipe, files), start=1)}


def _lora_chain(recipe: Recipe, files: ComfyFiles, first: int, model: list, clip: list | None
                ) -> tuple[list[dict], list, list | None]:
    """One loader per LoRA, each patching the previous one's model (and CLIP); returns the
    nodes and the last model and CLIP outputs. Node ids start at `first`."""
    nodes = []
    for weight in recipe.loras:
        title = f"LoRA {files.loras[weight.adapter]} at {weight.weight:g}"
        if clip is None:
            nodes.append(_node("LoraLoaderModelOnly", title, model=model,
                               lora_name=files.loras[weight.adapter],
                               strength_model=weight.weight))
        else:
            nodes.append(_node("LoraLoader", title, model=model, clip=clip,
                               lora_name=files.loras[weight.adapter],
                               strength_model=weight.weight, strength_clip=weight.weight))
            clip = [str(first + len(nodes) - 1), 1]
        model = [str(first + len(nodes) - 1), 0]
    return nodes, model, clip


def _checkpoint_graph(r: Recipe, files: ComfyFiles) -> list[dict]:
    """SD 1.5 and SDXL: one checkpoint file holds UNet, text encoders and VAE."""
    loras, model, clip = _lora_chain(r, files, 2, ["1", 0], ["1", 1])
    n = 1 + len(loras)  # the id of the last loader (or of the checkpoint)
    prompt = r.prompt
    for embedding in files.embeddings:
        prompt = comfyui_prompt(prompt, embedding)
    return [
        _node("CheckpointLoaderSimple", "Base model", ckpt_name=files.checkpoint),
        *loras,
        _node("CLIPTextEncode", "Prompt (with the trigger word)", text=prompt, clip=clip),
        _node("CLIPTextEncode", "Negative prompt", text=r.negative_prompt, clip=clip),
        _node("EmptyLatentImage", "Size", width=r.width, height=r.height, batch_size=1),
        *_sample_and_save(r, files, model, n + 1, r.guidance_scale, COMFYUI_SCHEDULER,
                          vae=["1", 2]),
    ]


def _flux_graph(r: Recipe, files: ComfyFiles) -> list[dict]:
    """Flux: the transformer, the two text encoders and the VAE are separate files; LoRAs
    patch the transformer only; the distilled guidance is a conditioning value."""
    loras, model, _ = _lora_chain(r, files, 4, ["1", 0], None)
    n = 3 + len(loras)
    return [
        _node("UNETLoader", "Flux transformer", unet_name=files.checkpoint,
              weight_dtype="default"),
        _node("DualCLIPLoader", "CLIP-L and T5", clip_name1=FLUX_FILES["clip_l"],
              clip_name2=FLUX_FILES["t5"], type="flux"),
        _node("VAELoader", "Flux VAE", vae_name=FLUX_FILES["vae"]),
        *loras,
        _node("CLIPTextEncode", "Prompt (with the trigger word)", text=r.prompt,
              clip=["2", 0]),
        _node("FluxGuidance", "Distilled guidance (the renderer's)", conditioning=[str(n + 1), 0],
              guidance=r.guidance_scale),
        _node("CLIPTextEncode", "Negative prompt (used at a CFG above 1)",
              text=r.negative_prompt, clip=["2", 0]),
        _node("EmptySD3LatentImage", "Size", width=r.width, height=r.height, batch_size=1),
        *_sample_and_save(r, files, model, n + 2, r.true_cfg_scale, FLUX_SCHEDULER,
                          vae=["3", 0]),
    ]


def _sample_and_save(r: Recipe, files: ComfyFiles, model: list, positive: int, cfg: float,
                     scheduler: str, vae: list) -> list[dict]:
    """KSampler, decode and save, the sampler's positive, negative and latent inputs being
    the nodes `positive`, `positive` + 1 and + 2, and the sampler itself the next one."""
    sampler = positive + 3
    return [
        _node("KSampler", "Sampler (the renderer's settings)", model=model,
              positive=[str(positive), 0], negative=[str(positive + 1), 0],
              latent_image=[str(positive + 2), 0], seed=r.seed, steps=r.steps, cfg=cfg,
              sampler_name=COMFYUI_SAMPLER, scheduler=scheduler, denoise=1.0),
        _node("VAEDecode", "Decode", samples=[str(sampler), 0], vae=vae),
        # The output files named after the recipe's LoRAs.
        _node("SaveImage", "Save", images=[str(sampler + 1), 0],
              filename_prefix="_".join(PurePath(f).stem for f in files.loras.values())
              or "bioart"),
    ]


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


def a1111_infotext(recipe: Recipe, files: ComfyFiles) -> str:
    """The same recipe as A1111's generation parameters (paste into the prompt box and use the
    arrow under Generate to fill in every field)."""
    r = recipe
    loras = " ".join(f"<lora:{PurePath(files.loras[w.adapter]).stem}:{w.weight:g}>"
                     for w in r.loras)
    guidance = (f"Schedule type: Simple, CFG scale: {r.true_cfg_scale:g}, "
                f"Distilled CFG Scale: {r.guidance_scale:g}" if files.family == "flux"
                else f"CFG scale: {r.guidance_scale:g}")
    return "\n".join([
        " ".join(filter(None, [r.prompt, loras])),
        *([f"Negative prompt: {r.negative_prompt}"] if r.negative_prompt else []),
        f"Steps: {r.steps}, Sampler: {A1111_SAMPLER}, {guidance}, Seed: {r.seed}, "
        f"Size: {r.width}x{r.height}"])
