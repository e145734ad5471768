"""The embedded base model: the committed weights are the ones its pretraining recorded, the
loader assembles them with the seeded text encoders, tampering is refused, and the base draws
what a prompt names on the textbook's cream paper."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.evaluation.metrics import srgb_to_lab
from bioart_pipeline.models import tiny_sdxl
from bioart_pipeline.pretraining.corpus import COLOURS, PAPER, corpus_item
from tests.conftest import tiny_pipe

WEIGHT_FILES = {"unet/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors"}


def _config(model) -> dict:
    """The config as saved to config.json (tuples become lists there)."""
    return json.loads(json.dumps(
        {k: v for k, v in dict(model.config).items() if not k.startswith("_")}))


def test_committed_weights_are_the_ones_the_pretraining_recorded() -> None:
    build = tiny_sdxl.pretrained_build()
    assert set(build["sha256"]) == WEIGHT_FILES
    for name, expected in build["sha256"].items():
        assert sha256_file(tiny_sdxl.PRETRAINED_DIR / name) == expected, name
    size = sum((tiny_sdxl.PRETRAINED_DIR / name).stat().st_size for name in WEIGHT_FILES)
    assert size <= 25 * 2**20
    assert build["command"].startswith("bioart build-base") and build["settings"]["seed"] == 0


def test_committed_architecture_is_the_one_the_builder_defines() -> None:
    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl.PRETRAINED_DIR / "unet")
    vae = AutoencoderKL.from_pretrained(tiny_sdxl.PRETRAINED_DIR / "vae")
    assert _config(unet) == _config(tiny_sdxl.random_unet())
    measured = tiny_sdxl.pretrained_build()["figures"]["vae"]["scaling_factor"]
    assert _config(vae) == {**_config(tiny_sdxl.random_vae()), "scaling_factor": measured}
    assert set(unet.state_dict()) == set(tiny_sdxl.random_unet().state_dict())


def test_loader_assembles_the_committed_weights_and_the_seeded_text_encoders(
        models_dir: Path) -> None:
    pipe = tiny_pipe(models_dir)
    committed = UNet2DConditionModel.from_pretrained(tiny_sdxl.PRETRAINED_DIR / "unet")
    assert tiny_sdxl.weights_digest(pipe.unet) == tiny_sdxl.weights_digest(committed)
    assert tiny_sdxl.weights_digest(pipe.text_encoder, pipe.text_encoder_2) == \
        tiny_sdxl.pretrained_build()["text_encoders_digest"]
    assert tiny_sdxl.weights_digest(pipe.unet) != \
        tiny_sdxl.weights_digest(tiny_sdxl.random_unet())  # trained, not the seeded init


def test_a_changed_weight_file_is_refused_with_the_fix(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(tiny_sdxl.PRETRAINED_DIR, tmp_path / "weights")
    unet_file = tmp_path / "weights" / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(unet_file.read_bytes())
    data[-1] ^= 1
    unet_file.write_bytes(bytes(data))
    monkeypatch.setattr(tiny_sdxl, "PRETRAINED_DIR", tmp_path / "weights")
    with pytest.raises(ValueError, match="differs from its sha256 in build.json.*make base-model"):
        tiny_sdxl.build_tiny_sdxl(tmp_path / "model")
    assert not (tmp_path / "model").exists()  # nothing half-built is left as a model


def _delta_e(rgb_a, rgb_b) -> float:
    lab = srgb_to_lab(np.array([rgb_a, rgb_b], dtype=np.float64) / 255)
    return float(np.linalg.norm(lab[0] - lab[1]))


def test_the_base_draws_what_the_prompt_names_on_cream_paper(models_dir: Path) -> None:
    pipe = tiny_pipe(models_dir)
    names = ("red", "blue", "purple")  # words it learned well (BASE_MODEL.md: known limits)
    images = pipe([f"a {name} circle" for name in names], num_inference_steps=20,
                  guidance_scale=5.0, height=128, width=128,
                  generator=[torch.Generator().manual_seed(0) for _ in names]).images
    for name, image in zip(names, images, strict=True):
        pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
        corner = np.asarray(image, dtype=np.float64)[:8, :8].reshape(-1, 3).mean(0)
        assert _delta_e(corner, PAPER) < 12, (name, corner)  # the textbook's paper
        # The drawn colour: the pixels furthest from the paper, closest to the named colour.
        ink = pixels[[_delta_e(p, PAPER) > 25 for p in pixels]]
        assert len(ink) > 200, name  # something is drawn, not an empty page
        mean = ink.mean(0)
        nearest = min(COLOURS, key=lambda c: _delta_e(mean, COLOURS[c]))
        assert nearest == name, (name, mean)


def test_the_corpus_is_reproducible_and_its_captions_name_colours() -> None:
    first, again = corpus_item(0, 7), corpus_item(0, 7)
    assert first.caption == again.caption and first.image.tobytes() == again.image.tobytes()
    assert corpus_item(1, 7).image.tobytes() != first.image.tobytes()
    shapes = [item for item in (corpus_item(0, i) for i in range(300)) if item.subject == "shapes"]
    assert shapes and all(any(c in item.caption for c in COLOURS) for item in shapes)


def test_a_family_has_its_own_pretraining_defaults_and_a_flag_overrides_them() -> None:
    from bioart_pipeline.pretraining.base_model import TARGETS, settings_for

    assert settings_for(TARGETS["sdxl"], {"unet_steps": None}).unet_steps == 4000
    assert settings_for(TARGETS["flux"], {"unet_steps": None}).unet_steps == 3000
    assert settings_for(TARGETS["flux"], {"unet_steps": 10, "seed": None}).unet_steps == 10


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_build_base_pretrains_every_family_into_what_its_tiny_builder_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: str) -> None:
    """`bioart build-base --family X`, a few steps on a few corpus images: the denoiser it
    exports (with build.json) is what the family's tiny builder assembles, with the seeded text
    encoders and textbook-tiny's VAE; a resumed run continues from the saved step."""
    from bioart_pipeline.models import tiny_flux, tiny_sd15
    from bioart_pipeline.models.families import FAMILIES
    from bioart_pipeline.pretraining.base_model import TARGETS, BaseSettings, build_base

    target, module = TARGETS[family], {"sd15": tiny_sd15, "flux": tiny_flux}[family]
    settings = BaseSettings(corpus_size=12, unet_steps=2, unet_batch=4, checkpoint_every=1,
                            sample_every=1000, threads=2)
    build_base(tmp_path / "work", tmp_path / "out", settings, target)
    longer = BaseSettings(**{**settings.__dict__, "unet_steps": 3})
    figures = build_base(tmp_path / "work", tmp_path / "out2", longer, target)
    denoiser = FAMILIES[family].denoiser
    state = json.loads((tmp_path / "work" / denoiser / "state.json").read_text())
    assert state["step"] == 3 and len(state["losses"]) == 3  # resumed, not restarted
    assert figures["vae"]["reused"] == "textbook_tiny"
    build = json.loads((tmp_path / "out2" / "build.json").read_text())
    assert build["command"] == f"bioart build-base --family {family}"
    assert set(build["sha256"]) == {f"{denoiser}/diffusion_pytorch_model.safetensors"}

    monkeypatch.setattr(module, "PRETRAINED_DIR", tmp_path / "out2")
    folder = getattr(module, f"build_tiny_{family}")(tmp_path / "model", pretrained=True)
    exported = sha256_file(tmp_path / "out2" / denoiser / "diffusion_pytorch_model.safetensors")
    assert sha256_file(folder / denoiser / "diffusion_pytorch_model.safetensors") == exported
