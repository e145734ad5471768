"""A Flux-shaped smoke run: Flux.1-dev's full width (24 heads of 128, T5 width 4096, CLIP
pooled 768, 16-channel latents in 2x2 patches, guidance embedding) with few blocks, through the
training code's pieces: the family's LoRA targets, flow-matching objective, prediction (packing,
position ids, guidance) and export. No download: random weights from the configuration.

    .venv/bin/python benchmarks/flux_smoke.py [--size 1024] [--double 1] [--single 1]

It prints seconds per optimizer step and peak memory (the process's resident set; on a GPU
the card's peak too), and checks the exported key names against the model's own modules, the
naming diffusers, ComfyUI and Forge map for Flux. Full Flux.1-dev has 19 double and 38 single
blocks; the per-block figures say what the full model costs.
"""

from __future__ import annotations

import argparse
import re
import resource
import time

import torch
from diffusers import FluxPipeline, FluxTransformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from bioart_pipeline.models.families import FAMILIES
from bioart_pipeline.models.tiny_flux import SCHEDULER_CONFIG
from bioart_pipeline.training.export import lora_state_dict
from bioart_pipeline.training.objectives import FlowMatching

# black-forest-labs/FLUX.1-dev transformer/config.json, but the block counts.
FLUX_DEV = dict(patch_size=1, in_channels=64, attention_head_dim=128, num_attention_heads=24,
                joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=(16, 56, 56))
T5_TOKENS = 512
GIB = 1024 ** 3


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--double", type=int, default=1, help="double-stream blocks (dev: 19)")
    parser.add_argument("--single", type=int, default=1, help="single-stream blocks (dev: 38)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    family = FAMILIES["flux"]

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(**FLUX_DEV, num_layers=args.double,
                                         num_single_layers=args.single).to(device, dtype)
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank,
                                       init_lora_weights="gaussian",
                                       target_modules=list(family.lora_targets["attention"])))
    transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    base = sum(p.numel() for p in transformer.parameters()) - sum(p.numel() for p in params)
    print(f"Flux.1-dev width, {args.double} double + {args.single} single blocks: "
          f"{base / 1e6:.0f} M frozen parameters, {sum(p.numel() for p in params) / 1e6:.2f} M "
          f"LoRA (rank {args.rank}, attention), {args.size} px, batch 1, {device} {dtype}")

    latent = args.size // 8
    objective = FlowMatching(SCHEDULER_CONFIG)
    times = []
    for _ in range(args.steps):
        x0 = torch.randn(1, 16, latent, latent, device=device)
        noised = objective.sample(x0, torch.randn_like(x0))
        prompt = torch.randn(1, T5_TOKENS, FLUX_DEV["joint_attention_dim"], device=device)
        pooled = torch.randn(1, FLUX_DEV["pooled_projection_dim"], device=device)
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            prediction = family.predict(transformer, noised.noisy.to(dtype), noised.timesteps,
                                        prompt, pooled, torch.zeros(1, 6))
        loss = torch.nn.functional.mse_loss(prediction.float(), noised.target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    tokens = (latent // 2) ** 2 + T5_TOKENS
    print(f"  {min(times):.2f} s per optimizer step ({tokens} tokens: {(latent // 2) ** 2} "
          f"image + {T5_TOKENS} text), loss {loss.item():.3f}")
    print(f"  peak resident memory {peak_rss_gib():.1f} GiB"
          + (f", peak GPU memory {torch.cuda.max_memory_allocated() / GIB:.1f} GiB"
             if device.type == "cuda" else ""))
    check_export(transformer, family, args.rank)


def check_export(transformer: FluxTransformer2DModel, family, rank: int) -> None:
    """Every exported key names a module of the model, in diffusers' `transformer.` naming,
    and diffusers' Flux LoRA loader reads the file's keys back unchanged."""
    exported = lora_state_dict({"transformer": get_peft_model_state_dict(transformer)}, rank,
                               family)
    modules = dict(transformer.named_modules())
    pattern = re.compile(r"^transformer\.(.+)\.lora_[AB]\.weight$")
    names = [pattern.match(key) for key in exported]
    assert all(names), [k for k, m in zip(exported, names, strict=True) if not m]
    assert all(m.group(1) in modules for m in names)
    read = FluxPipeline.lora_state_dict(exported)
    assert set(read) == set(exported), "diffusers renamed keys on reading them"
    per_block = {kind: len({m.group(1).split(".")[1] for m in names
                            if m.group(1).startswith(kind + ".")})
                 for kind in ("transformer_blocks", "single_transformer_blocks")}
    print(f"  export: {len(exported)} keys, all `transformer.<module>.lora_A/B.weight` of "
          f"existing modules ({per_block}), read back by diffusers' Flux loader unchanged")


if __name__ == "__main__":
    main()
