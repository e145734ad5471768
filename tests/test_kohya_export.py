"""An exported LoRA file, loaded by diffusers, renders what the in-memory peft model renders:
for each family (tiny SDXL, SD 1.5 and Flux), in the key naming ComfyUI and A1111 (Forge for
Flux) map."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bioart_pipeline.models.families import FAMILIES, family_of
from bioart_pipeline.specs.presets import LORA_TARGETS
from bioart_pipeline.training import loop
from bioart_pipeline.training.export import (
    ExportError,
    kohya_state_dict,
    lora_state_dict,
    read_metadata,
    write_lora,
)
from tests.conftest import lora_state, random_lora_pipe, tiny_pipe, tiny_training_job

RANK, ALPHA = 8, 4  # subject-style alpha = rank / 2: a wrong .alpha doubles the strength
PROFILES = ["tiny", "tiny-sd15", "tiny-flux"]  # one tiny model per family
# What each family's file names its parts (the loaders map exactly these): kohya's prefixes for
# SD, diffusers' model names for Flux.
PARTS = {"sdxl": {"lora_unet_", "lora_te1_", "lora_te2_"}, "sd15": {"lora_unet_", "lora_te_"},
         "flux": {"transformer."}}


def _pipe(models_dir: Path, profile: str = "tiny"):
    pipe = tiny_pipe(models_dir, profile)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _render(pipe, scale: float) -> torch.Tensor:
    # Flux takes the LoRA scale as joint_attention_kwargs, the UNet pipelines as
    # cross_attention_kwargs.
    kwargs = ("joint_attention_kwargs" if family_of(pipe).name == "flux"
              else "cross_attention_kwargs")
    return pipe("cellulamito, a mitochondrion", num_inference_steps=3, output_type="pt",
                generator=torch.Generator().manual_seed(0), **{kwargs: {"scale": scale}}).images


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("targets", LORA_TARGETS)
def test_exported_file_matches_in_memory_model(models_dir: Path, tmp_path: Path, targets: str,
                                               profile: str) -> None:
    trained = random_lora_pipe(models_dir, rank=RANK, alpha=ALPHA, targets=targets,
                               profile=profile)
    state = lora_state_dict(lora_state(trained), ALPHA, family_of(trained))
    path = write_lora(tmp_path / "lora.safetensors", state,
                      {"ss_network_dim": str(RANK), "ss_network_alpha": str(ALPHA)})
    fresh = _pipe(models_dir, profile)
    fresh.load_lora_weights(str(path))
    for scale in (1.0, 0.5):
        expected, got = _render(trained, scale), _render(fresh, scale)
        assert torch.allclose(expected, got, atol=1e-4), f"scale {scale}"
    base = _render(_pipe(models_dir, profile), 1.0)
    assert not torch.allclose(_render(trained, 1.0), base, atol=1e-3)


class _Quiet:
    def log(self, message: str) -> None:
        pass


@pytest.mark.parametrize("profile", PROFILES)
def test_lora_trained_by_the_loop_exports_to_the_same_images(tmp_path: Path, models_dir: Path,
                                                             profile: str) -> None:
    """The subject preset's alpha = rank / 2 with text-encoder LoRA, trained by the real loop:
    its kohya checkpoint, loaded by diffusers, renders what the trained model in memory does."""
    text = profile != "tiny-flux"  # Flux LoRAs train the transformer only
    job = tiny_training_job(tmp_path, models_dir, preset="subject", profile=profile,
                            rank=RANK, alpha=ALPHA,
                            train_text_encoder=text, epochs=2, save_every_n_epochs=2,
                            batch_size=2, grad_accumulation=1, warmup_steps=0,
                            learning_rate=5e-3)
    session = loop._Session(job, tmp_path / "run", _Quiet())  # keeps the trained pipeline
    result = session.run()
    trained = session.pipe
    path = tmp_path / "run" / result.checkpoints[-1]["file"]
    exported = load_file(str(path))
    for part in PARTS[job.profile.architecture]:  # every part learned something
        assert any(k.startswith(part) and k.endswith((".lora_up.weight", ".lora_B.weight"))
                   and t.abs().max() > 0 for k, t in exported.items()), part
    fresh = _pipe(models_dir, profile)
    fresh.load_lora_weights(str(path))
    for scale in (1.0, 0.5):
        expected, got = _render(trained, scale), _render(fresh, scale)
        assert torch.allclose(expected, got, atol=1e-4), f"scale {scale}"
    change = (_render(trained, 1.0) - _render(_pipe(models_dir, profile), 1.0)).abs().max()
    assert change > 1e-2, "training left the image unchanged: the comparison proves nothing"


@pytest.mark.parametrize("profile", ["tiny", "tiny-sd15"])
def test_key_names_are_the_ones_comfyui_maps(models_dir: Path, profile: str) -> None:
    pipe = random_lora_pipe(models_dir, rank=RANK, alpha=ALPHA, profile=profile)
    keys = kohya_state_dict(lora_state(pipe), ALPHA, family_of(pipe))
    parts = {k.split("_", 2)[1] for k in keys}
    assert {f"lora_{p}_" for p in parts} == PARTS[family_of(pipe).name]
    te_keys = [k for k in keys if not k.startswith("lora_unet_")]
    assert te_keys and all(k.split("_", 2)[2].startswith("text_model_encoder_layers_")
                           for k in te_keys)
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    assert {float(v) for k, v in keys.items() if k.endswith(".alpha")} == {float(ALPHA)}


def test_dora_and_unlisted_metadata_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="DoRA"):
        kohya_state_dict({"unet": {"a.to_q.lora_magnitude_vector": torch.ones(2)}}, 1.0,
                         FAMILIES["sdxl"])
    with pytest.raises(ExportError, match="allow-list"):
        write_lora(tmp_path / "x.safetensors", {"k": torch.ones(1)}, {"ss_dataset_dirs": "x"})


def test_metadata_values_are_strings_with_tensor_hash(tmp_path: Path) -> None:
    tensors = {"lora_unet_x.lora_down.weight": torch.ones(2, 2)}
    path = write_lora(tmp_path / "x.safetensors", tensors, {"ss_network_dim": "2"})
    metadata = read_metadata(path)
    assert metadata["modelspec.hash_sha256"].startswith("0x")
    assert load_file(str(path)).keys() == tensors.keys()


# Stable Diffusion 1.5 as released (runwayml/stable-diffusion-v1-5: unet/config.json and the
# text tower of openai/clip-vit-large-patch14), built on the meta device: no weights, no download.
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8,
                 cross_attention_dim=768, norm_num_groups=32,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_TEXT = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                 num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu")


def _sd15_modules() -> dict[str, torch.nn.Module]:
    """Kohya name -> module of a full SD 1.5, named as ComfyUI's comfy/lora.py names them
    (`lora_unet_` / `lora_te_` + the module path with dots as underscores)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        models = {"lora_unet_": UNet2DConditionModel(**SD15_UNET),
                  "lora_te_": CLIPTextModel(CLIPTextConfig(**SD15_TEXT))}
    modules = {}
    for prefix, model in models.items():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
                name = name if prefix == "lora_unet_" or name.startswith("text_model.") \
                    else f"text_model.{name}"
                modules[prefix + name.replace(".", "_")] = module
    return modules


@pytest.mark.parametrize("targets", LORA_TARGETS)
def test_the_tiny_sd15_export_finds_every_module_in_full_sd15(models_dir: Path, targets: str
                                                              ) -> None:
    """The demo's SD 1.5 LoRAs train on a base of SD 1.5's layout: every key of their export
    lands on a module of the real model, of the same kind (a 1x1 conv's LoRA is 4-D)."""
    pipe = random_lora_pipe(models_dir, rank=RANK, alpha=ALPHA, targets=targets,
                            profile="tiny-sd15")
    keys = kohya_state_dict(lora_state(pipe), ALPHA, family_of(pipe))
    modules = _sd15_modules()
    names = {k.split(".", 1)[0] for k in keys}
    assert [n for n in sorted(names) if n not in modules] == []
    kinds = {n: keys[f"{n}.lora_down.weight"].dim() for n in names}
    wrong = [n for n, dim in kinds.items()
             if dim != (4 if isinstance(modules[n], torch.nn.Conv2d) else 2)]
    assert wrong == []
    unet = [n for n in names if n.startswith("lora_unet_")]
    assert any("down_blocks_0_attentions_0" in n for n in unet)  # SD 1.5's first level
    assert len(names) == len(keys) / 3
