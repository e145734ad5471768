"""An exported kohya file, loaded by diffusers, renders what the in-memory peft model renders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bioart_pipeline.specs.presets import LORA_TARGETS
from bioart_pipeline.training import loop
from bioart_pipeline.training.export import ExportError, kohya_state_dict, read_metadata, write_lora
from tests.conftest import lora_state, random_lora_pipe, tiny_pipe, tiny_training_job

RANK, ALPHA = 8, 4  # subject-style alpha = rank / 2: a wrong .alpha doubles the strength


def _pipe(models_dir: Path):
    pipe = tiny_pipe(models_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _render(pipe, scale: float) -> torch.Tensor:
    return pipe("cellulamito, a mitochondrion", num_inference_steps=3, output_type="pt",
                generator=torch.Generator().manual_seed(0),
                cross_attention_kwargs={"scale": scale}).images


@pytest.mark.parametrize("targets", list(LORA_TARGETS))
def test_exported_file_matches_in_memory_model(models_dir: Path, tmp_path: Path, targets: str
                                               ) -> None:
    trained = random_lora_pipe(models_dir, rank=RANK, alpha=ALPHA, targets=targets)
    path = write_lora(tmp_path / "lora.safetensors", kohya_state_dict(lora_state(trained), ALPHA),
                      {"ss_network_dim": str(RANK), "ss_network_alpha": str(ALPHA)})
    fresh = _pipe(models_dir)
    fresh.load_lora_weights(str(path))
    for scale in (1.0, 0.5):
        expected, got = _render(trained, scale), _render(fresh, scale)
        assert torch.allclose(expected, got, atol=1e-4), f"scale {scale}"
    assert not torch.allclose(_render(trained, 1.0), _render(_pipe(models_dir), 1.0), atol=1e-3)


class _Quiet:
    def log(self, message: str) -> None:
        pass


def test_lora_trained_by_the_loop_exports_to_the_same_images(tmp_path: Path, models_dir: Path
                                                             ) -> None:
    """The subject preset's alpha = rank / 2 with text-encoder LoRA, trained by the real loop:
    its kohya checkpoint, loaded by diffusers, renders what the trained model in memory does."""
    job = tiny_training_job(tmp_path, models_dir, preset="subject", rank=RANK, alpha=ALPHA,
                            train_text_encoder=True, epochs=2, save_every_n_epochs=2,
                            batch_size=2, grad_accumulation=1, warmup_steps=0,
                            learning_rate=5e-3)
    session = loop._Session(job, tmp_path / "run", _Quiet())  # keeps the trained pipeline
    result = session.run()
    trained = session.pipe
    path = tmp_path / "run" / result.checkpoints[-1]["file"]
    exported = load_file(str(path))
    for prefix in ("lora_unet_", "lora_te1_", "lora_te2_"):  # every part learned something
        assert any(k.startswith(prefix) and k.endswith(".lora_up.weight") and t.abs().max() > 0
                   for k, t in exported.items()), prefix
    fresh = _pipe(models_dir)
    fresh.load_lora_weights(str(path))
    for scale in (1.0, 0.5):
        expected, got = _render(trained, scale), _render(fresh, scale)
        assert torch.allclose(expected, got, atol=1e-4), f"scale {scale}"
    change = (_render(trained, 1.0) - _render(_pipe(models_dir), 1.0)).abs().max()
    assert change > 1e-2, "training left the image unchanged: the comparison proves nothing"


def test_key_names_are_the_ones_comfyui_maps(models_dir: Path) -> None:
    keys = kohya_state_dict(lora_state(random_lora_pipe(models_dir, rank=RANK, alpha=ALPHA)),
                            ALPHA)
    prefixes = {k.split("_", 2)[1] for k in keys}
    assert prefixes == {"unet", "te1", "te2"}
    te_keys = [k for k in keys if k.startswith(("lora_te1_", "lora_te2_"))]
    assert all(k.startswith(("lora_te1_text_model_encoder_layers_",
                             "lora_te2_text_model_encoder_layers_")) for k in te_keys)
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    assert {float(v) for k, v in keys.items() if k.endswith(".alpha")} == {float(ALPHA)}


def test_dora_and_unlisted_metadata_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="DoRA"):
        kohya_state_dict({"unet": {"a.to_q.lora_magnitude_vector": torch.ones(2)}}, 1.0)
    with pytest.raises(ExportError, match="allow-list"):
        write_lora(tmp_path / "x.safetensors", {"k": torch.ones(1)}, {"ss_dataset_dirs": "x"})


def test_metadata_values_are_strings_with_tensor_hash(tmp_path: Path) -> None:
    tensors = {"lora_unet_x.lora_down.weight": torch.ones(2, 2)}
    path = write_lora(tmp_path / "x.safetensors", tensors, {"ss_network_dim": "2"})
    metadata = read_metadata(path)
    assert metadata["modelspec.hash_sha256"].startswith("0x")
    assert load_file(str(path)).keys() == tensors.keys()
