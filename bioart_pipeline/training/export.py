"""Export a peft LoRA in kohya naming, the format ComfyUI and Automatic1111 load as-is.

Traps handled here (see shared/engineering-notes.md): `.alpha` is the real alpha, not the rank;
text-encoder-1 keys keep the `text_model` level that transformers >= 5.6 dropped; DoRA is
refused; metadata comes from an allow-list, so nothing about the training set leaks.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from bioart_pipeline.common.files import atomic_write_bytes
from bioart_pipeline.models.families import Family

if TYPE_CHECKING:  # torch loads where tensors are written or read, not with the definitions
    import torch

    from bioart_pipeline.specs import LoraSpec

# Keys a loader reads or a lawyer needs; anything else is dropped on export.
ALLOWED_METADATA = (
    "modelspec.sai_model_spec", "modelspec.architecture", "modelspec.implementation",
    "modelspec.title", "modelspec.author", "modelspec.date", "modelspec.license",
    "modelspec.trigger_phrase", "modelspec.resolution", "modelspec.hash_sha256",
    "modelspec.description",
    "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
    "ss_output_name",
    "bioart.release_id", "bioart.manifest_sha256", "bioart.epoch", "bioart.step",
)


class ExportError(ValueError):
    """The adapter cannot be written in a format loaders read correctly."""


def lora_state_dict(peft_state: Mapping[str, Mapping[str, torch.Tensor]], alpha: float,
                    family: Family) -> dict[str, torch.Tensor]:
    """The LoRA as the family's loaders read it: kohya naming (SD 1.5, SDXL) or diffusers
    naming (Flux)."""
    if family.export_format == "kohya":
        return kohya_state_dict(peft_state, alpha, family)
    return diffusers_state_dict(peft_state, alpha)


def diffusers_state_dict(peft_state: Mapping[str, Mapping[str, torch.Tensor]], alpha: float
                         ) -> dict[str, torch.Tensor]:
    """`<model>.<module>.lora_A/B.weight`, the naming diffusers writes and ComfyUI and Forge
    map for Flux. It has no alpha per module (a loader then scales by 1), so alpha / rank is
    folded into lora_B: every loader applies the trained strength."""
    out: dict[str, torch.Tensor] = {}
    for component, state in peft_state.items():
        for key, tensor in state.items():
            _refuse_dora(key)
            _split(key)  # refuses anything that is not a LoRA weight
            scale = alpha / tensor.shape[1] if ".lora_B." in key else 1.0
            out[f"{component}.{key}"] = (tensor.detach().float() * scale).to(
                tensor.dtype).to("cpu").contiguous()
    return out


def kohya_state_dict(peft_state: Mapping[str, Mapping[str, torch.Tensor]], alpha: float,
                     family: Family) -> dict[str, torch.Tensor]:
    """`peft_state` maps "unet" and the family's text encoders ("text_encoder",
    "text_encoder_2") to the peft state dict of that model (keys like
    `...to_q.lora_A.weight`); keys get the family's kohya prefixes."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for component, state in peft_state.items():
        for key, tensor in state.items():
            _refuse_dora(key)
            module, kind = _split(key)
            name = family.kohya_prefixes[component] + _module_name(component, module)
            out[f"{name}.{kind}.weight"] = tensor.detach().to("cpu").contiguous()
            out.setdefault(f"{name}.alpha", torch.tensor(float(alpha)))
    return out


def _refuse_dora(key: str) -> None:
    if "lora_magnitude_vector" in key:
        raise ExportError("DoRA adapters cannot be exported (kohya's dora_scale has another "
                          "shape and axis than peft's magnitude); train without DoRA")


def _split(key: str) -> tuple[str, str]:
    for peft_kind, kohya_kind in (("lora_A", "lora_down"), ("lora_B", "lora_up")):
        marker = f".{peft_kind}."
        if marker in key:
            return key.split(marker)[0], kohya_kind
    raise ExportError(f"not a LoRA weight key: {key}")


def _module_name(component: str, module: str) -> str:
    # CLIPTextModel lost its `text_model.` level in transformers 5; ComfyUI expects it.
    if component.startswith("text_encoder") and not module.startswith("text_model."):
        module = "text_model." + module
    return module.replace(".", "_")


def tensor_hash(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over the tensor bytes only (the safetensors body), as ModelSpec defines it."""
    from safetensors.torch import save

    blob = save(dict(tensors))
    header_len = struct.unpack("<Q", blob[:8])[0]
    return hashlib.sha256(blob[8 + header_len:]).hexdigest()


def write_lora(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
               ) -> Path:
    """Write a kohya LoRA with allow-listed string metadata plus its tensor hash."""
    unknown = sorted(set(metadata) - set(ALLOWED_METADATA))
    if unknown:
        raise ExportError(f"metadata keys not on the allow-list: {unknown}")
    meta = {k: str(v) for k, v in metadata.items()}
    meta["modelspec.hash_sha256"] = "0x" + tensor_hash(tensors)
    from safetensors.torch import save

    return atomic_write_bytes(path, save(dict(tensors), metadata=meta))


class UnreadableLora(ValueError):
    """A file that is not a readable safetensors file; the message says why, in one line."""


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header metadata, read by the safetensors library without loading any
    tensor. It refuses a header over 100 MB, so a hostile declared length costs nothing."""
    try:
        with safe_open(str(path), "pt") as lora:
            return dict(lora.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise UnreadableLora(f"{path.name} is not a readable safetensors file "
                             f"({str(exc).splitlines()[0]})") from exc


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, or UnreadableLora."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UnreadableLora(f"{path.name} is not a readable safetensors file "
                             f"({str(exc).splitlines()[0]})") from exc


def spec_metadata(spec: LoraSpec) -> dict[str, str]:
    """What a LoRA trained for `spec` says about itself, from the spec as it is now."""
    profile, preset = spec.model_profile, spec.training
    return base_metadata(
        family=profile.family, title=f"{spec.project} {spec.subject}", author=spec.author,
        license_id=spec.release_license, trigger=spec.trigger, resolution=profile.resolution,
        base_model_version=profile.base_model_version, rank=preset.rank, alpha=preset.alpha,
        output_name=spec.release_stem())


def base_metadata(family: Family, title: str, author: str, license_id: str, trigger: str,
                  resolution: int, base_model_version: str, rank: int, alpha: float,
                  output_name: str) -> dict[str, str]:
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{family.modelspec_architecture}/lora",
        "modelspec.implementation": family.modelspec_implementation,
        "modelspec.title": title, "modelspec.author": author,
        "modelspec.license": license_id, "modelspec.trigger_phrase": trigger,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "ss_base_model_version": base_model_version,
        "ss_network_module": family.kohya_network_module,
        "ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
        "ss_output_name": output_name,
    }
