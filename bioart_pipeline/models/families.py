"""Model families: what differs between SD 1.5 and SDXL for the code that loads a base, encodes
captions, calls the UNet, exports a LoRA and tells the tools what a file is. Everything else
(caching, resume, guards, XY plot, release, audit) is shared; a profile's `architecture`
names its family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline


@dataclass(frozen=True)
class Family:
    name: str  # the profiles' `architecture`
    title: str  # for people: model cards, logs
    pipeline: type
    text_encoders: tuple[str, ...]  # the pipeline's text-encoder attributes
    tokenizers: tuple[str, ...]  # each text encoder's tokenizer attribute, in the same order
    # kohya LoRA key prefix per trained model: what ComfyUI and A1111 map for the family
    kohya_prefixes: Mapping[str, str]
    # Per text encoder, its key in an A1111 / ComfyUI textual-inversion embedding file
    embedding_keys: Mapping[str, str]
    modelspec_architecture: str  # ModelSpec's name of the base; a LoRA file adds "/lora"
    modelspec_implementation: str
    hub_tag: str  # the Hugging Face model-card tag of the family
    # SDXL's pooled text embedding and size micro-conditioning, as the UNet's added input
    added_conditioning: bool
    load_options: Mapping[str, object] = field(default_factory=dict)

    def encode(self, pipe, captions: list[str], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(prompt embeddings, pooled embedding or None) for each caption, no guidance."""
        if self.added_conditioning:
            embeds, _, pooled, _ = pipe.encode_prompt(captions, device=device,
                                                      do_classifier_free_guidance=False)
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(captions, device=device, num_images_per_prompt=1,
                                       do_classifier_free_guidance=False)
        return embeds, None

    def predict(self, unet, noisy: torch.Tensor, timesteps: torch.Tensor,
                prompt_embeds: torch.Tensor, pooled: torch.Tensor | None,
                time_ids: torch.Tensor) -> torch.Tensor:
        """The UNet's prediction, in the dtype of `noisy`; `time_ids` only where the family
        has SDXL's micro-conditioning."""
        dtype = noisy.dtype
        added = ({"text_embeds": pooled.to(dtype), "time_ids": time_ids.to(dtype)}
                 if self.added_conditioning else None)
        return unet(noisy, timesteps, prompt_embeds.to(dtype), added_cond_kwargs=added).sample


FAMILIES: dict[str, Family] = {
    "sd15": Family(
        name="sd15", title="Stable Diffusion 1.5", pipeline=StableDiffusionPipeline,
        text_encoders=("text_encoder",), tokenizers=("tokenizer",),
        # kohya's SD1 naming: one text encoder, `lora_te_text_model_encoder_layers_*`
        kohya_prefixes={"unet": "lora_unet_", "text_encoder": "lora_te_"},
        embedding_keys={"text_encoder": "emb_params"},
        modelspec_architecture="stable-diffusion-v1",
        modelspec_implementation="https://github.com/CompVis/stable-diffusion",
        hub_tag="stable-diffusion",
        added_conditioning=False,
        # The safety checker is an inference filter, not part of the model a LoRA trains on.
        load_options={"safety_checker": None, "requires_safety_checker": False},
    ),
    "sdxl": Family(
        name="sdxl", title="Stable Diffusion XL", pipeline=StableDiffusionXLPipeline,
        text_encoders=("text_encoder", "text_encoder_2"), tokenizers=("tokenizer", "tokenizer_2"),
        kohya_prefixes={"unet": "lora_unet_", "text_encoder": "lora_te1_",
                        "text_encoder_2": "lora_te2_"},
        embedding_keys={"text_encoder": "clip_l", "text_encoder_2": "clip_g"},
        modelspec_architecture="stable-diffusion-xl-v1-base",
        modelspec_implementation="https://github.com/Stability-AI/generative-models",
        hub_tag="stable-diffusion-xl",
        added_conditioning=True,
    ),
}


def get_family(architecture: str) -> Family:
    if architecture not in FAMILIES:
        raise ValueError(f"unknown model architecture {architecture!r}; "
                         f"known: {', '.join(FAMILIES)}")
    return FAMILIES[architecture]


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, from its class."""
    for family in FAMILIES.values():
        if isinstance(pipe, family.pipeline):
            return family
    raise ValueError(f"no model family for a {type(pipe).__name__}; known: {', '.join(FAMILIES)}")


def text_encoder_modules(pipe) -> list[torch.nn.Module]:
    """A loaded pipeline's text encoders, in its family's order."""
    return [getattr(pipe, name) for name in family_of(pipe).text_encoders]
