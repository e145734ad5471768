"""Model-profile layer: real CLIP tokenizer, tiny SDXL and SD 1.5 builds and the shared loader."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline
from transformers import CLIPTokenizer

from bioart_pipeline.models import builtin, tiny_sdxl
from bioart_pipeline.models.clip_tokenizer import write_clip_tokenizer
from bioart_pipeline.models.families import family_of
from bioart_pipeline.models.profiles import (
    builtin_folder,
    get_profile,
    load_pipeline,
    pin_revision,
    profile_fingerprint,
    vae_scale_factor,
)
from bioart_pipeline.models.tiny_sd15 import build_tiny_sd15
from bioart_pipeline.models.tiny_sdxl import build_tiny_sdxl, weights_digest
from tests.single_file import write_single_file

CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny_pipe(models_dir):
    return load_pipeline(get_profile("tiny"), models_dir)


def test_clip_tokenizer_is_real_clip(tmp_path):
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path), model_max_length=77)
    assert tok("a photo of a cat").input_ids == CAT_IDS
    assert len(tok) == 49408


def test_pipeline_tokenizers_match_sdxl(tiny_pipe):
    for tok, pad in ((tiny_pipe.tokenizer, "<|endoftext|>"), (tiny_pipe.tokenizer_2, "!")):
        assert tok.model_max_length == 77
        assert tok.pad_token == pad
        assert tok("a photo of a cat").input_ids == CAT_IDS
        assert len(tok) <= tiny_pipe.text_encoder.config.vocab_size


def test_tiny_build_is_deterministic(tmp_path):
    a, b = build_tiny_sdxl(tmp_path / "a"), build_tiny_sdxl(tmp_path / "b")
    weights = sorted(p.relative_to(a) for p in a.glob("*/*.safetensors"))
    assert len(weights) == 4  # unet, vae, two text encoders
    for rel in weights:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert not list(a.rglob("*.bin")), "weights must be safetensors only"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"], "partial folder left"


def test_build_refuses_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("not a model")
    with pytest.raises(FileExistsError):
        build_tiny_sdxl(tmp_path / "x")


def test_tiny_generates_deterministically(tiny_pipe):
    assert vae_scale_factor(tiny_pipe) == 4

    def generate():
        gen = torch.Generator().manual_seed(0)
        return tiny_pipe("a photo of a cat", num_inference_steps=2, generator=gen).images[0]

    first, second = generate(), generate()
    assert first.size == (128, 128)
    assert np.array_equal(np.asarray(first), np.asarray(second))


def test_unet_size_and_training_step(tiny_pipe):
    unet = tiny_pipe.unet
    n_params = sum(p.numel() for p in unet.parameters())
    assert 1_000_000 <= n_params <= 3_000_000, n_params
    cfg = unet.config
    assert cfg.addition_embed_type == "text_time"
    assert cfg.cross_attention_dim == (
        tiny_pipe.text_encoder.config.hidden_size + tiny_pipe.text_encoder_2.config.hidden_size
    )
    latents = torch.randn(2, 4, 32, 32, requires_grad=True)
    cond = torch.randn(2, 77, cfg.cross_attention_dim)
    added = {
        "text_embeds": torch.randn(2, tiny_pipe.text_encoder_2.config.projection_dim),
        "time_ids": torch.tensor([[128.0, 128, 0, 0, 128, 128]] * 2),
    }
    out = unet(latents, torch.tensor([10, 900]), cond, added_cond_kwargs=added).sample
    assert out.shape == latents.shape
    out.pow(2).mean().backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all()
    assert unet.conv_in.weight.grad is not None
    unet.zero_grad(set_to_none=True)


def test_local_folder_goes_through_same_loader(models_dir, tiny_pipe):
    folder = builtin_folder(models_dir)  # built by the tiny_pipe fixture
    pipe = load_pipeline(get_profile("sdxl", source=str(folder)), models_dir)
    assert pipe.unet.config == tiny_pipe.unet.config


def test_fingerprint_is_stable(models_dir, tiny_pipe):
    tiny = get_profile("tiny")
    fp = profile_fingerprint(tiny, models_dir)
    assert fp.startswith(f"builtin:{builtin.TINY_VERSION}@sha256:")
    assert fp == profile_fingerprint(tiny, models_dir)
    assert profile_fingerprint(get_profile("sdxl"), models_dir) == get_profile("sdxl").source


@pytest.mark.parametrize("name", ["tiny", "tiny-sd15", "tiny-flux"])
def test_a_builtin_is_named_without_being_built(tmp_path: Path, name: str) -> None:
    """The Dagster process keys a training run by the base's fingerprint before the job runs:
    for a built-in base it hashes the committed files, never building (or importing) it."""
    profile = get_profile(name)
    fingerprint = profile_fingerprint(profile, tmp_path)
    assert fingerprint.startswith(f"{profile.source}@sha256:")
    assert list(tmp_path.iterdir()) == []
    version = profile.source.removeprefix("builtin:")
    assert any(f.name == "build.json" for f in builtin.committed_files(version))
    vae = builtin.TEXTBOOK_TINY / "vae" / "diffusion_pytorch_model.safetensors"
    assert vae in builtin.committed_files(version)  # the VAE all three share


def test_profiles():
    sdxl, tiny = get_profile("sdxl"), get_profile("tiny")
    assert sdxl.source == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (sdxl.resolution, sdxl.bucket_step) == (1024, 64)
    assert (tiny.resolution, tiny.bucket_step) == (128, 16)
    assert sdxl.min_side == tiny.min_side == 512
    assert sdxl.base_model_version == tiny.base_model_version == "sdxl_base_v1-0"
    assert get_profile("sdxl", source="/m/x.safetensors").source == "/m/x.safetensors"


def test_unknown_profile_is_clear():
    with pytest.raises(ValueError, match="known profiles: tiny, tiny-sd15, sd15, tiny-flux, "
                                         "flux, sdxl"):
        get_profile("sd3")


@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "pytorch_model.bin"])
def test_pickled_single_file_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"not unpickled")
    with pytest.raises(ValueError, match="safetensors"):
        load_pipeline(get_profile("sdxl", source=str(path)), tmp_path)


def test_missing_single_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pipeline(get_profile("sdxl", source=str(tmp_path / "no.safetensors")), tmp_path)


def test_single_file_checkpoint_loads_offline_from_its_config_folder(tmp_path, models_dir,
                                                                     tiny_pipe):
    """A Juggernaut-style single .safetensors in the original layout, with a folder of configs
    only (no weights there): every weight must come from the single file."""
    folder = builtin_folder(models_dir)
    single = write_single_file(folder, tmp_path / "studio_base.safetensors")
    configs = tmp_path / "configs"
    shutil.copytree(folder, configs, ignore=shutil.ignore_patterns("*.safetensors"))
    profile = get_profile("sdxl", source=str(single), single_file_config=str(configs))

    pipe = load_pipeline(profile, tmp_path / "unused")
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        expected, got = getattr(tiny_pipe, name).state_dict(), getattr(pipe, name).state_dict()
        assert expected.keys() == got.keys(), name
        assert all(torch.equal(expected[k], got[k]) for k in expected), name
    assert profile_fingerprint(profile, tmp_path).startswith(f"{single}@")


def test_a_hub_model_that_cannot_be_fetched_says_what_to_do(models_dir: Path) -> None:
    # The tests run with HF_HUB_OFFLINE=1 (conftest), as a studio machine without network.
    profile = get_profile("sdxl", "cellula-studio/no-such-sdxl", revision="1a2b3c4")
    with pytest.raises(OSError, match=r"at revision 1a2b3c4.*HF_HUB_OFFLINE is set.*"
                                      r"huggingface-cli download cellula-studio/no-such-sdxl "
                                      r"--revision 1a2b3c4"):
        load_pipeline(profile, models_dir)


def _hub_cache(root: Path, repo: str, commit: str) -> None:
    """The hub cache's layout for `repo` with main at `commit` (what a download leaves)."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (folder / "snapshots" / commit / "model_index.json").write_text("{}")


def test_a_hub_id_is_pinned_to_its_commit(tmp_path: Path, models_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    from bioart_pipeline.specs.presets import PRESETS
    from bioart_pipeline.training.job import TrainingJob

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo, first, second = "cellula-studio/house-sdxl", "a" * 40, "b" * 40
    profile = get_profile("sdxl", repo)
    _hub_cache(tmp_path / "hub", repo, first)
    pinned = pin_revision(profile)
    assert pinned.revision == first
    assert profile_fingerprint(pinned, models_dir) == f"{repo}@{first}"
    job = TrainingJob(lora="x", profile=pinned, preset=PRESETS["style"], images=(),
                      models_dir="", latent_cache_dir=str(tmp_path / "latents"))
    _hub_cache(tmp_path / "hub", repo, second)  # main moved on
    moved = pin_revision(profile)
    assert moved.revision == second
    assert job.cache_key(profile_fingerprint(pinned, models_dir)) != job.cache_key(
        profile_fingerprint(moved, models_dir))
    assert job.latent_folder(f"{repo}@{first}") != job.latent_folder(f"{repo}@{second}")
    assert pin_revision(get_profile("sdxl", repo, revision=first)).revision == first
    with pytest.raises(OSError, match="not in the local hub cache.*huggingface-cli download"):
        pin_revision(get_profile("sdxl", "cellula-studio/never-downloaded"))


def test_metadata_only_fields_do_not_change_the_training_key() -> None:
    import dataclasses

    from bioart_pipeline.specs.presets import PRESETS
    from bioart_pipeline.training.job import TrainingJob

    job = TrainingJob(lora="x", profile=get_profile("tiny"), preset=PRESETS["style"],
                      images=(), models_dir="", latent_cache_dir="",
                      export_metadata={"modelspec.author": "A"}, validation_prompts=("p",))
    renamed = dataclasses.replace(job, export_metadata={"modelspec.author": "B"},
                                  validation_prompts=("q",), sample_steps=30)
    assert job.cache_key("base") == renamed.cache_key("base")
    retuned = dataclasses.replace(job, preset=dataclasses.replace(job.preset, rank=8))
    assert job.cache_key("base") != retuned.cache_key("base")


def test_sd15_profile_loads_a_diffusers_folder_as_its_family(tmp_path: Path) -> None:
    """A local SD 1.5 folder (here the tiny one) loads as StableDiffusionPipeline, without a
    safety checker, with textbook-tiny's VAE; the build is deterministic."""
    folder = build_tiny_sd15(tmp_path / "sd15")
    pipe = load_pipeline(get_profile("sd15", source=str(folder)), tmp_path / "unused")
    assert isinstance(pipe, StableDiffusionPipeline) and pipe.safety_checker is None
    assert family_of(pipe).name == "sd15" and not hasattr(pipe, "text_encoder_2")
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.unet.config.addition_embed_type is None
    textbook = AutoencoderKL.from_pretrained(tiny_sdxl.PRETRAINED_DIR / "vae")
    assert weights_digest(pipe.vae) == weights_digest(textbook)
    again = load_pipeline(get_profile("sd15", source=str(build_tiny_sd15(tmp_path / "b"))),
                          tmp_path / "unused")
    assert weights_digest(pipe.unet, pipe.text_encoder) == \
        weights_digest(again.unet, again.text_encoder)


def test_flux_training_feeds_the_transformer_as_the_pipeline_does() -> None:
    """Training packs latents into 2x2 patches and numbers them as FluxPipeline does at
    sampling time, so a LoRA learns on the layout it is used with."""
    from diffusers import FluxPipeline

    from bioart_pipeline.models.families import latent_image_ids, pack_latents, unpack_latents

    latents = torch.randn(2, 4, 8, 12)
    packed = pack_latents(latents)
    assert torch.equal(packed, FluxPipeline._pack_latents(latents, 2, 4, 8, 12))
    assert torch.equal(unpack_latents(packed, 8, 12), latents)
    expected = FluxPipeline._prepare_latent_image_ids(2, 4, 6, torch.device("cpu"), torch.float32)
    assert torch.equal(latent_image_ids(8, 12), expected)
