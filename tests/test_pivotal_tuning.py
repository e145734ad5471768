"""Pivotal tuning: new trigger tokens trained with the LoRA in every text encoder. The exported
LoRA plus embedding file, loaded the way a user loads them in diffusers, render what the trained
model renders; the embedding file has the keys ComfyUI and A1111 read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bioart_pipeline.generation.embeddings import split_bundle
from bioart_pipeline.training import loop
from bioart_pipeline.training.pivotal import add_new_tokens, write_embedding
from tests.conftest import tiny_pipe, tiny_training_job

TRIGGER = "zqxcellstyle"  # made up: no CLIP vocabulary entry has this name
TOKENS = 2
EMBEDDING_KEYS = {"tiny": {"clip_l": 32, "clip_g": 64}, "tiny-sd15": {"emb_params": 32}}


class _Quiet:
    def log(self, message: str) -> None:
        pass


def _job(tmp_path: Path, models_dir: Path, profile: str, **overrides):
    settings = {"pivotal_tokens": TOKENS, "embedding_learning_rate": 5e-2, "epochs": 2,
                "save_every_n_epochs": 1, "batch_size": 2, "grad_accumulation": 1,
                "warmup_steps": 0, "learning_rate": 5e-3, **overrides}
    job = tiny_training_job(tmp_path, models_dir, profile=profile, **settings)
    images = tuple(dataclasses.replace(i, caption=i.caption.replace("trig", TRIGGER))
                   for i in job.images)
    return dataclasses.replace(job, trigger=TRIGGER, images=images)


def _render(pipe, prompt: str) -> torch.Tensor:
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt, num_inference_steps=3, output_type="pt",
                generator=torch.Generator().manual_seed(0)).images


@pytest.mark.parametrize("profile", ["tiny", "tiny-sd15"])
def test_exported_lora_and_embedding_reproduce_the_trained_model(tmp_path: Path,
                                                                 models_dir: Path,
                                                                 profile: str) -> None:
    job = _job(tmp_path, models_dir, profile)
    session = loop._Session(job, tmp_path / "run", _Quiet())  # keeps the trained pipeline
    result = session.run()
    checkpoint = load_file(str(tmp_path / "run" / result.checkpoints[-1]["file"]))
    lora, embeddings = split_bundle(checkpoint)
    assert list(embeddings) == [TRIGGER]
    vectors = embeddings[TRIGGER]
    assert {k: v.shape for k, v in vectors.items()} == {
        k: (TOKENS, width) for k, width in EMBEDDING_KEYS[profile].items()}

    # What a user does with the release's two files.
    (tmp_path / "release").mkdir()
    lora_file = tmp_path / "release" / "lora.safetensors"
    save_file(lora, str(lora_file))
    embedding_file = write_embedding(tmp_path / "release" / f"{TRIGGER}.safetensors", vectors)
    fresh = tiny_pipe(models_dir, profile)
    fresh.load_lora_weights(str(lora_file))
    loaded = load_file(str(embedding_file))
    for key, (encoder, tokenizer) in zip(EMBEDDING_KEYS[profile], [
            ("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2")], strict=False):
        fresh.load_textual_inversion(loaded[key], token=TRIGGER,
                                     text_encoder=getattr(fresh, encoder),
                                     tokenizer=getattr(fresh, tokenizer))

    prompt = f"{TRIGGER}, a mitochondrion"
    trained = _render(session.pipe, prompt)
    assert torch.allclose(trained, _render(fresh, prompt), atol=1e-4)
    # The tokens learned: the vectors moved from their seeded start, and without the embedding
    # (the trigger read as plain text) the LoRA alone draws something else.
    start = add_new_tokens(tiny_pipe(models_dir, profile), TRIGGER, TOKENS, job.preset.seed)
    for (encoder, rows), key in zip(start.items(), EMBEDDING_KEYS[profile], strict=True):
        assert (vectors[key] - rows.detach()).abs().max() > 1e-3, encoder
    without = tiny_pipe(models_dir, profile)
    without.load_lora_weights(str(lora_file))
    assert (trained - _render(without, prompt)).abs().max() > 1e-2


class _Killed(Exception):
    pass


def test_resume_restores_the_new_token_vectors(tmp_path: Path, models_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped right after epoch 1's state is saved, then resumed: the last checkpoint's
    vectors are those of an uninterrupted run."""
    job = _job(tmp_path, models_dir, "tiny")
    whole = loop._Session(job, tmp_path / "whole", _Quiet()).run()
    save_state = loop.save_state

    def save_then_stop(*args, **kwargs):
        save_state(*args, **kwargs)
        raise _Killed

    monkeypatch.setattr(loop, "save_state", save_then_stop)
    with pytest.raises(_Killed):
        loop._Session(job, tmp_path / "stopped", _Quiet()).run()
    monkeypatch.setattr(loop, "save_state", save_state)
    resumed = loop._Session(job, tmp_path / "stopped", _Quiet()).run()
    assert [c["epoch"] for c in resumed.checkpoints] == [1, 2]

    def vectors(run: Path) -> dict[str, torch.Tensor]:
        return split_bundle(load_file(str(run / "epoch_0002.safetensors")))[1][TRIGGER]

    expected, got = vectors(whole.run_dir), vectors(resumed.run_dir)
    assert all(torch.allclose(expected[k], got[k], atol=1e-6) for k in expected)
