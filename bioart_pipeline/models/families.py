"""Model families: what differs between SD 1.5, SDXL and Flux.1 for the code that loads a base,
encodes captions, calls the denoiser, exports a LoRA and tells the tools what a file is.
Everything else (caching, resume, guards, XY plot, release, audit) is shared; a profile's
`architecture` names its family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model stack loads with a model, not with the definitions
    import torch

# Which denoiser layers get LoRA, by the preset's `lora_targets`. "locon" adds the UNet's ResNet
# convolutions, feed-forward and projection layers (LoCon-style): more capacity for a look.
UNET_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "attention": ("to_q", "to_k", "to_v", "to_out.0"),
    "locon": ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
              "ff.net.2", "conv1", "conv2", "conv_shortcut", "time_emb_proj"),
}
# Flux: the image and text streams' attention of the double blocks and the single blocks'
# attention; "locon" adds their MLPs and output projections (what kohya's "all layers" covers).
FLUX_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "attention": ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj",
                  "add_v_proj", "to_add_out"),
    "locon": ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
              "to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj",
              "ff_context.net.2", "proj_mlp", "proj_out"),
}
# T5 tokens per prompt: FluxPipeline's default (Flux.1-dev), so training sees what sampling sees.
FLUX_MAX_SEQUENCE_LENGTH = 512
# Flux.1-dev's distilled guidance while training: 1.0, as kohya and ai-toolkit train LoRAs.
FLUX_TRAINING_GUIDANCE = 1.0


@dataclass(frozen=True)
class Family:
    name: str  # the profiles' `architecture`
    title: str  # for people: model cards, logs
    pipeline_name: str  # the diffusers pipeline class
    denoiser: str  # the pipeline's attribute that LoRA trains: "unet" or "transformer"
    text_encoders: tuple[str, ...]  # the pipeline's text-encoder attributes
    tokenizers: tuple[str, ...]  # each text encoder's tokenizer attribute, in the same order
    lora_targets: Mapping[str, tuple[str, ...]]
    # "kohya" (kohya_prefixes per trained model, `.alpha` per module: what ComfyUI and A1111
    # map for SD) or "diffusers" (`transformer.<module>.lora_A/B`, alpha folded into lora_B)
    export_format: str
    kohya_network_module: str  # ss_network_module, as kohya writes it for the family
    modelspec_architecture: str  # ModelSpec's name of the base; a LoRA file adds "/lora"
    modelspec_implementation: str
    hub_tag: str  # the Hugging Face model-card tag of the family
    guidance_scale: float  # the XY plot's default (Flux.1-dev: its distilled guidance)
    kohya_prefixes: Mapping[str, str] = field(default_factory=dict)
    # Per text encoder, its key in an A1111 / ComfyUI textual-inversion embedding file; empty:
    # the family has no pivotal tuning and no text-encoder LoRA
    embedding_keys: Mapping[str, str] = field(default_factory=dict)
    # The XY plot's sampler (a diffusers scheduler class), replacing the base's own (None: keep it)
    sampler_name: str | None = "EulerDiscreteScheduler"
    flow_matching: bool = False  # the training objective (objectives.py)
    load_options: Mapping[str, object] = field(default_factory=dict)

    @property
    def pipeline(self) -> type:
        return _diffusers_class(self.pipeline_name)

    @property
    def sampler(self) -> type | None:
        return _diffusers_class(self.sampler_name) if self.sampler_name else None

    @property
    def trains_text(self) -> bool:
        """Whether text-encoder LoRA and pivotal tuning are offered for the family."""
        return bool(self.embedding_keys)

    def check_preset(self, preset) -> None:
        """Refuse training options the family does not have."""
        if not self.trains_text and (preset.train_text_encoder or preset.pivotal_tokens):
            raise ValueError(f"{self.title} LoRAs train the {self.denoiser} only here: set "
                             "train_text_encoder: false and pivotal_tokens: 0")

    def check_true_cfg(self, true_cfg_scale: float) -> None:
        if true_cfg_scale != 1.0:
            raise ValueError(f"true_cfg_scale is Flux's (classifier-free guidance beside its "
                             f"distilled guidance); {self.title}'s guidance_scale is already "
                             "classifier-free: leave true_cfg_scale out")

    def guidance_options(self, guidance_scale: float, true_cfg_scale: float, batch: int
                         ) -> dict:
        """The pipeline call's guidance arguments for a batch of `batch` prompts."""
        self.check_true_cfg(true_cfg_scale)
        return {"guidance_scale": guidance_scale}

    def encode(self, pipe, captions: list[str], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(prompt embeddings, pooled embedding or None) for each caption, no guidance."""
        embeds, _ = pipe.encode_prompt(captions, device=device, num_images_per_prompt=1,
                                       do_classifier_free_guidance=False)
        return embeds, None

    def predict(self, denoiser, noisy: torch.Tensor, timesteps: torch.Tensor,
                prompt_embeds: torch.Tensor, pooled: torch.Tensor | None,
                time_ids: torch.Tensor) -> torch.Tensor:
        """The denoiser's prediction for `noisy` (B, C, H, W), in its dtype."""
        return denoiser(noisy, timesteps, prompt_embeds.to(noisy.dtype)).sample


@dataclass(frozen=True)
class SdxlFamily(Family):
    """SDXL: two CLIP encoders; the pooled embedding and the size micro-conditioning
    (`time_ids`) are the UNet's added input."""

    def encode(self, pipe, captions, device):
        embeds, _, pooled, _ = pipe.encode_prompt(captions, device=device,
                                                  do_classifier_free_guidance=False)
        return embeds, pooled

    def predict(self, denoiser, noisy, timesteps, prompt_embeds, pooled, time_ids):
        dtype = noisy.dtype
        added = {"text_embeds": pooled.to(dtype), "time_ids": time_ids.to(dtype)}
        return denoiser(noisy, timesteps, prompt_embeds.to(dtype),
                        added_cond_kwargs=added).sample


@dataclass(frozen=True)
class FluxFamily(Family):
    """Flux.1: T5 token embeddings and CLIP-L's pooled vector; the transformer takes the
    latents as a sequence of 2x2 patches with rotary position ids, and a guidance value."""

    def check_true_cfg(self, true_cfg_scale: float) -> None:
        if true_cfg_scale < 1.0:
            raise ValueError(f"true_cfg_scale must be 1 (off) or more, got {true_cfg_scale}")

    def guidance_options(self, guidance_scale, true_cfg_scale, batch):
        """`guidance_scale` is the distilled guidance the transformer is conditioned on; above
        1, `true_cfg_scale` adds classifier-free guidance against the empty prompt (ComfyUI's
        KSampler cfg), at twice the cost."""
        self.check_true_cfg(true_cfg_scale)
        if true_cfg_scale == 1.0:
            return {"guidance_scale": guidance_scale}
        return {"guidance_scale": guidance_scale, "true_cfg_scale": true_cfg_scale,
                "negative_prompt": [""] * batch}

    def encode(self, pipe, captions, device):
        embeds, pooled, _ = pipe.encode_prompt(captions, prompt_2=None, device=device,
                                               max_sequence_length=FLUX_MAX_SEQUENCE_LENGTH)
        return embeds, pooled

    def predict(self, denoiser, noisy, timesteps, prompt_embeds, pooled, time_ids):
        import torch

        b, c, h, w = noisy.shape
        dtype, device = noisy.dtype, noisy.device
        guidance = (torch.full((b,), FLUX_TRAINING_GUIDANCE, device=device)
                    if denoiser.config.guidance_embeds else None)  # schnell has none
        packed = denoiser(
            hidden_states=pack_latents(noisy), timestep=timesteps.to(dtype), guidance=guidance,
            pooled_projections=pooled.to(dtype), encoder_hidden_states=prompt_embeds.to(dtype),
            txt_ids=torch.zeros(prompt_embeds.shape[1], 3, device=device, dtype=dtype),
            img_ids=latent_image_ids(h, w).to(device, dtype),
            return_dict=False)[0]
        return unpack_latents(packed, h, w)


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2 * W/2, 4C): FluxPipeline's 2x2 patch sequence."""
    b, c, h, w = latents.shape
    patches = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(b, (h // 2) * (w // 2), c * 4)


def latent_image_ids(h: int, w: int) -> torch.Tensor:
    """Each 2x2 patch's rotary position: (0, row, column), as FluxPipeline numbers them."""
    import torch

    rows, cols = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2), indexing="ij")
    return torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).float()


def unpack_latents(packed: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, channels = packed.shape
    c = channels // 4
    patches = packed.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return patches.reshape(b, c, h, w)


FAMILIES: dict[str, Family] = {
    "sd15": Family(
        name="sd15", title="Stable Diffusion 1.5", pipeline_name="StableDiffusionPipeline",
        denoiser="unet", text_encoders=("text_encoder",), tokenizers=("tokenizer",),
        lora_targets=UNET_LORA_TARGETS, export_format="kohya",
        kohya_network_module="networks.lora",
        # kohya's SD1 naming: one text encoder, `lora_te_text_model_encoder_layers_*`
        kohya_prefixes={"unet": "lora_unet_", "text_encoder": "lora_te_"},
        embedding_keys={"text_encoder": "emb_params"},
        modelspec_architecture="stable-diffusion-v1",
        modelspec_implementation="https://github.com/CompVis/stable-diffusion",
        hub_tag="stable-diffusion", guidance_scale=5.0,
        # The safety checker is an inference filter, not part of the model a LoRA trains on.
        load_options={"safety_checker": None, "requires_safety_checker": False},
    ),
    "sdxl": SdxlFamily(
        name="sdxl", title="Stable Diffusion XL", pipeline_name="StableDiffusionXLPipeline",
        denoiser="unet", text_encoders=("text_encoder", "text_encoder_2"),
        tokenizers=("tokenizer", "tokenizer_2"), lora_targets=UNET_LORA_TARGETS,
        export_format="kohya", kohya_network_module="networks.lora",
        kohya_prefixes={"unet": "lora_unet_", "text_encoder": "lora_te1_",
                        "text_encoder_2": "lora_te2_"},
        embedding_keys={"text_encoder": "clip_l", "text_encoder_2": "clip_g"},
        modelspec_architecture="stable-diffusion-xl-v1-base",
        modelspec_implementation="https://github.com/Stability-AI/generative-models",
        hub_tag="stable-diffusion-xl", guidance_scale=5.0,
    ),
    "flux": FluxFamily(
        name="flux", title="Flux.1", pipeline_name="FluxPipeline",
        denoiser="transformer",
        text_encoders=("text_encoder", "text_encoder_2"),
        tokenizers=("tokenizer", "tokenizer_2"), lora_targets=FLUX_LORA_TARGETS,
        export_format="diffusers", kohya_network_module="networks.lora_flux",
        modelspec_architecture="flux-1-dev",
        modelspec_implementation="https://github.com/black-forest-labs/flux",
        hub_tag="flux", guidance_scale=3.5, sampler_name=None, flow_matching=True,
    ),
}


def get_family(architecture: str) -> Family:
    if architecture not in FAMILIES:
        raise ValueError(f"unknown model architecture {architecture!r}; "
                         f"known: {', '.join(FAMILIES)}")
    return FAMILIES[architecture]


def _diffusers_class(name: str) -> type:
    import diffusers

    return getattr(diffusers, name)


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, from its class (or a class it derives from)."""
    classes = {cls.__name__ for cls in type(pipe).__mro__}
    for family in FAMILIES.values():
        if family.pipeline_name in classes:
            return family
    raise ValueError(f"no model family for a {type(pipe).__name__}; known: {', '.join(FAMILIES)}")


def text_encoder_modules(pipe) -> list[torch.nn.Module]:
    """A loaded pipeline's text encoders, in its family's order."""
    return [getattr(pipe, name) for name in family_of(pipe).text_encoders]


def denoiser_of(pipe) -> torch.nn.Module:
    """The UNet or the transformer: what LoRA trains."""
    return getattr(pipe, family_of(pipe).denoiser)
