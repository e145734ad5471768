"""Write a diffusers SDXL folder as one original-layout checkpoint, the way Juggernaut XL or
Pony are published (SGM key names: `model.diffusion_model.*`, `first_stage_model.*`,
`conditioner.embedders.{0,1}.*`), so tests can load it through diffusers' single-file loader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0",
           "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
           "conv_shortcut": "skip_connection"}


def write_single_file(folder: Path, path: Path) -> Path:
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    state = {
        **_unet(load_file(folder / "unet" / "diffusion_pytorch_model.safetensors"), unet_config),
        **_vae(load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"),
               len(json.loads((folder / "vae" / "config.json").read_text())
                   ["block_out_channels"])),
        **_clip_l(load_file(folder / "text_encoder" / "model.safetensors")),
        **_open_clip(load_file(folder / "text_encoder_2" / "model.safetensors")),
    }
    save_file(state, str(path))
    return path


def _unet_prefixes(config: dict) -> dict[str, str]:
    """diffusers module prefix -> original prefix, for any number of levels."""
    per_level = config["layers_per_block"] + 1
    down_attention = ["CrossAttn" in t for t in config["down_block_types"]]
    up_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    levels = len(down_attention)
    names = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
             "mid_block.resnets.1": "middle_block.2"}
    for i in range(levels):
        for j in range(per_level - 1):
            block = per_level * i + j + 1
            names[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{block}.0"
            if down_attention[i]:
                names[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{block}.1"
        for j in range(per_level):
            names[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{per_level * i + j}.0"
            if up_attention[i]:
                names[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{per_level * i + j}.1"
        if i < levels - 1:
            last = per_level * i + per_level - 1
            names[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{last + 1}.0.op"
            names[f"up_blocks.{i}.upsamplers.0.conv"] = (
                f"output_blocks.{last}.{2 if up_attention[i] else 1}.conv")
    return names


def _unet(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    names = _unet_prefixes(config)
    out = {}
    for key, tensor in state.items():
        prefix = max((p for p in names if key.startswith(p + ".")), key=len)
        rest = key[len(prefix) + 1:]
        if ".resnets." in prefix:
            layer, tail = rest.split(".", 1)
            rest = f"{_RESNET[layer]}.{tail}"
        out[f"model.diffusion_model.{names[prefix]}.{rest}"] = tensor
    return out


def _vae(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    def up(match: re.Match) -> str:  # decoder levels are numbered from the bottom
        return f"decoder.up.{levels - 1 - int(match[1])}.{match[2]}"

    out = {}
    for key, tensor in state.items():
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", key)
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample",
                     new)
        new = re.sub(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)",
                     lambda m: up(m).replace("resnets", "block").replace("upsamplers.0",
                                                                         "upsample"), new)
        new = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", new)
        new = new.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for old, original in (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."),
                                  ("to_v.", "v."), ("to_out.0.", "proj_out.")):
                new = new.replace(old, original)
            if tensor.ndim == 2:  # linear layers were 1x1 convolutions
                tensor = tensor[:, :, None, None]
        out[f"first_stage_model.{new}"] = tensor
    return out


def _clip_l(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI CLIP in transformers naming, with the `text_model.` level transformers 5 drops."""
    return {"conditioner.embedders.0.transformer."
            + (k if k.startswith("text_model.") else f"text_model.{k}"): v
            for k, v in state.items()}


def _open_clip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP naming: fused q/k/v projections, transposed text projection."""
    renames = (("encoder.layers.", "transformer.resblocks."), ("layer_norm1", "ln_1"),
               ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
               ("self_attn.out_proj", "attn.out_proj"), ("final_layer_norm.", "ln_final."),
               ("embeddings.token_embedding.weight", "token_embedding.weight"),
               ("embeddings.position_embedding.weight", "positional_embedding"))
    out, qkv = {}, {}
    for key, tensor in state.items():
        key = key.removeprefix("text_model.")
        fused = re.match(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key)
        if fused:
            qkv.setdefault((fused[1], fused[3]), {})[fused[2]] = tensor
        elif key == "text_projection.weight":
            out["text_projection"] = tensor.T.contiguous()
        else:
            for old, original in renames:
                key = key.replace(old, original)
            out[key] = tensor
    for (layer, kind), parts in qkv.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]])
    return {f"conditioner.embedders.1.model.{k}": v for k, v in out.items()}
