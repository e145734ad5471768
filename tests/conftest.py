"""Shared fixtures: a private data folder that reuses the sample portfolio read-only."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def quick_spec(name: str = "test_style", **overrides) -> dict:
    """The sample style spec with a short training run (the pipeline is the same)."""
    spec = yaml.safe_load((SAMPLE_DATA / "loras" / "cellula_style.yaml").read_text())
    spec["training"] = {**spec["training"], "epochs": 2, "save_every_n_epochs": 1, "batch_size": 4,
                        "grad_accumulation": 1, "warmup_steps": 0}
    spec["evaluation"] = {**spec["evaluation"], "weights": [0.5, 1.0], "seeds": [1, 2], "steps": 4}
    spec.update(overrides)
    return spec


def make_data_dir(root: Path, specs: dict[str, dict] | None = None, copy: bool = False
                  ) -> Path:
    """data/ with the sample portfolio (symlinked, so never written; or a copy a test may
    alter) and quick specs."""
    data = root / "data"
    (data / "loras").mkdir(parents=True)
    if copy:
        shutil.copytree(SAMPLE_DATA / "portfolio", data / "portfolio")
    else:
        (data / "portfolio").symlink_to(SAMPLE_DATA / "portfolio", target_is_directory=True)
    for name in ("terminology.yaml", "studio.yaml"):
        shutil.copy(SAMPLE_DATA / name, data / name)
    for name, spec in (specs or {"test_style": quick_spec()}).items():
        (data / "loras" / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return data


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """accelerate keeps one precision per process (a real training run is its own process):
    tests that train in process start from a clean state."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_data_dir(tmp_path)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model build for the whole session."""
    return tmp_path_factory.mktemp("models")


def drawing(seed: int, size: tuple[int, int] = (640, 640), mode: str = "RGB") -> Image.Image:
    """A flat illustration: sharp outlines, distinct per seed."""
    rng = random.Random(seed)
    image = Image.new(mode, size, "white" if mode != "RGBA" else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(size[0] - 150), rng.randrange(size[1] - 150)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255)
        draw.ellipse([x, y, x + rng.randint(60, 150), y + rng.randint(60, 150)],
                     fill=colour[: len(mode)], outline=(20, 20, 40, 255)[: len(mode)], width=6)
    return image


def add_image(folder: Path, name: str, image: Image.Image, sidecar: dict | None = None,
              **save: object) -> Path:
    """An image with an artist caption (`<stem>.txt`) and, given one, a licence sidecar."""
    path = folder / name
    image.save(path, **save)
    (folder / f"{path.stem}.txt").write_text(f"drawing {path.stem}")
    if sidecar is not None:
        (folder / f"{name}.license.yaml").write_text(yaml.safe_dump(sidecar))
    return path


def manifest_of(root: Path, folder: Path, studio, use: str = "commercial", signoffs=()):
    """The license manifest of a portfolio folder a test wrote, through the real stages: scan,
    preprocessing at 256 px, artist captions (`<stem>.txt`), then the manifest, by path."""
    from bioart_pipeline.captioning.assembly import CaptionRules
    from bioart_pipeline.captioning.stage import caption_images
    from bioart_pipeline.captioning.terminology import load_terminology
    from bioart_pipeline.licensing.manifest import build_manifest
    from bioart_pipeline.portfolio.ingest import PortfolioFolder, scan_portfolio
    from bioart_pipeline.preprocessing.stage import (
        NEAR_DUPLICATE_BITS,
        PreprocessOptions,
        preprocess_portfolio,
    )

    raw = scan_portfolio([PortfolioFolder(folder, "train")], display=lambda p: p.name)
    prep = preprocess_portfolio(raw, lambda n: folder / n, root / "cache",
                                PreprocessOptions(resolution=256, bucket_step=32)).table
    rules = CaptionRules(trigger="trig", lora_type="style",
                         terminology=load_terminology(root / "none.yaml"))
    captions = caption_images(prep, lambda n: folder / n, lambda key: root / key, rules,
                              model=None, model_origin=None, previous=None,
                              stage_dir=root / "captions").table
    return build_manifest(raw, prep, captions, use, "exclude", studio, list(signoffs),
                          NEAR_DUPLICATE_BITS).set_index("path")


def tiny_training_job(tmp_path: Path, models_dir: Path, prompts: tuple[str, ...] = (),
                      preset: str = "style", profile: str = "tiny", **overrides):
    """A short run (style preset unless told) on 12 drawn images at the tiny model's 128 px
    (tiny SDXL unless `profile` names another tiny model)."""
    from bioart_pipeline.models.profiles import get_profile
    from bioart_pipeline.specs.presets import PRESETS
    from bioart_pipeline.training.job import TrainingImage, TrainingJob

    images = []
    for seed in range(12):
        path = tmp_path / "images" / f"{seed}.png"
        path.parent.mkdir(exist_ok=True)
        drawing(seed, size=(512, 512)).resize((128, 128)).save(path)
        images.append(TrainingImage(key=f"k{seed}", file=str(path), role="train",
                                    caption=f"trig, a cell with {seed % 3} nuclei",
                                    bucket=(128, 128)))
    # Without gradient checkpointing, as the demo specs: the tests that need it ask for it.
    resolved = PRESETS[preset].with_overrides({
        "epochs": 6, "save_every_n_epochs": 1, "batch_size": 2, "grad_accumulation": 2,
        "warmup_steps": 2, "learning_rate": 1e-3, "gradient_checkpointing": False,
        **overrides})
    return TrainingJob(lora="tiny_run", profile=get_profile(profile), preset=resolved,
                       images=tuple(images), models_dir=str(models_dir),
                       latent_cache_dir=str(tmp_path / "latents"), validation_prompts=prompts,
                       sample_steps=2, wandb_mode="disabled")


def tiny_pipe(models_dir: Path, profile: str = "tiny"):
    from bioart_pipeline.models.profiles import get_profile, load_pipeline

    return load_pipeline(get_profile(profile), models_dir)


def random_lora_pipe(models_dir: Path, seed: int = 0, rank: int = 8, alpha: float = 4,
                     targets: str = "attention", profile: str = "tiny"):
    """A tiny pipeline with LoRA on the UNet and every text encoder, every weight drawn at
    random (init_lora_weights=False), so its effect on an image is plain to see."""
    import torch
    from peft import LoraConfig

    from bioart_pipeline.models.families import denoiser_of, family_of, text_encoder_modules
    from bioart_pipeline.training.loop import TEXT_ENCODER_TARGETS

    pipe = tiny_pipe(models_dir, profile)
    torch.manual_seed(seed)  # after the load: building the tiny model reseeds torch
    denoiser_of(pipe).add_adapter(LoraConfig(
        r=rank, lora_alpha=alpha, init_lora_weights=False,
        target_modules=list(family_of(pipe).lora_targets[targets])))
    for encoder in text_encoder_modules(pipe) if family_of(pipe).trains_text else ():
        encoder.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False,
                                       target_modules=TEXT_ENCODER_TARGETS))
    return pipe


def lora_state(pipe) -> dict:
    """The peft state of each LoRA-carrying model, as kohya_state_dict takes it."""
    from peft.utils import get_peft_model_state_dict

    from bioart_pipeline.models.families import family_of

    family = family_of(pipe)
    names = (family.denoiser, *(family.text_encoders if family.trains_text else ()))
    return {name: get_peft_model_state_dict(getattr(pipe, name)) for name in names}


def random_lora_file(models_dir: Path, path: Path, seed: int, rank: int = 8, alpha: float = 4
                     ) -> Path:
    from bioart_pipeline.models.families import FAMILIES
    from bioart_pipeline.training.export import kohya_state_dict, write_lora

    state = lora_state(random_lora_pipe(models_dir, seed, rank, alpha))
    return write_lora(path, kohya_state_dict(state, alpha, FAMILIES["sdxl"]),
                      {"ss_network_dim": str(rank), "ss_network_alpha": str(alpha)})


def release_through_the_demo_runs(tmp_path_factory: pytest.TempPathFactory, name: str,
                                  spec: dict):
    """`spec` as the only LoRA, taken through the demo's two Dagster runs (up to the XY plot,
    then the automated review and the gated release); returns (workspace, release folder)."""
    import dagster as dg

    from bioart_pipeline.cli import _demo_runs
    from bioart_pipeline.common.paths import Workspace
    from bioart_pipeline.definitions import build_definitions

    data_dir = make_data_dir(tmp_path_factory.mktemp(name), {name: spec})
    workspace = Workspace(data_dir, tmp_path_factory.mktemp("outputs"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [name])
    defs = build_definitions(workspace)
    for _, job_name, assets, run_config, tags in _demo_runs():
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=name, instance=instance, run_config=run_config, tags=tags,
            asset_selection=[dg.AssetKey(a) for a in assets])
        assert result.success
    shown = result.asset_materializations_for_node("validated_release")[0].metadata
    return workspace, workspace.outputs_dir / shown["release_folder"].value


E2E_PARTITION = "test_style"
SIGNED_IMAGE = "cells/nucleus_closeup_01.png"  # own work: the studio's notice in the file


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole chain, materialized once by Dagster for the session (the end-to-end and the
    audit tests inspect what it left behind): up to the XY plot, then the demo's review and
    release."""
    import dagster as dg

    from bioart_pipeline.cli import _demo_runs
    from bioart_pipeline.common.paths import Workspace
    from bioart_pipeline.definitions import build_definitions

    data_dir = make_data_dir(tmp_path_factory.mktemp("e2e"), copy=True)
    _sign_as_the_studio(data_dir / "portfolio" / SIGNED_IMAGE)
    workspace = Workspace(data_dir, tmp_path_factory.mktemp("outputs"))
    defs = build_definitions(workspace)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [E2E_PARTITION])
    job = defs.resolve_job_def("lora_pipeline")
    first = job.execute_in_process(
        partition_key=E2E_PARTITION, instance=instance, asset_selection=[dg.AssetKey(k) for k in (
            "raw_portfolio", "preprocessed_images", "captions", "license_manifest",
            "lora_checkpoints", "xy_plot_evaluation")])
    _, _, assets, run_config, tags = _demo_runs()[1]  # the demo's review and release
    release = job.execute_in_process(
        partition_key=E2E_PARTITION, instance=instance, run_config=run_config, tags=tags,
        asset_selection=[dg.AssetKey(k) for k in assets])
    return {"workspace": workspace, "first": first, "release": release, "job": job,
            "instance": instance}


def _sign_as_the_studio(path: Path) -> None:
    """The same pixels with the studio's own notice in PNG text chunks, as a studio's export
    writes them: consistent with the sidecar, so the image still trains."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Cellula Studio")
    info.add_text("Copyright", "© 2026 Cellula Studio. All rights reserved.")
    with Image.open(path) as image:
        image.load()
        image.save(path, pnginfo=info)


def release_folder(pipeline_run: dict) -> Path:
    shown = pipeline_run["release"].asset_materializations_for_node(
        "validated_release")[0].metadata["release_folder"].value
    assert shown == f"releases/{E2E_PARTITION}/v1"  # relative: no home folders on screen
    return pipeline_run["workspace"].outputs_dir / shown


def copy_of_release(pipeline_run: dict, tmp_path: Path) -> Path:
    """A writable copy of the release, under tmp_path/releases/ as the audit looks for it."""
    copy = tmp_path / "releases" / E2E_PARTITION / "v1"
    shutil.copytree(release_folder(pipeline_run), copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def check_summary_against_manifest(folder: Path) -> None:
    """TRAINING_DATA_SUMMARY.md, field by field, against the release's own manifest, studio
    and records, each expected value worked out here from the manifest's rows."""
    import datetime
    import json
    import re

    import pandas as pd

    from bioart_pipeline.licensing.embedded import OPT_OUT_PROTOCOLS
    from bioart_pipeline.licensing.studio import load_studio

    summary = (folder / "TRAINING_DATA_SUMMARY.md").read_text()
    fields = dict(re.findall(r"^- \*\*(.+?)\*\*: (.*)$", summary, re.M))
    manifest = pd.read_parquet(folder / "license_manifest.parquet")
    studio = load_studio(SAMPLE_DATA / "studio.yaml")
    trained, left_out = manifest[manifest["included"]], manifest[~manifest["included"]]
    made = trained["model_made"] != ""
    own = ~made & trained["license"].isin(studio.own_licenses) & (trained["author"]
                                                                  == studio.name)
    public = ~made & ~own & trained["source"].str.match(r"https?://")
    release = json.loads((folder / "release.json").read_text())
    config = json.loads((folder / "training_config.json").read_text())

    def works(mask: pd.Series) -> str:
        n = int(mask.sum())
        return "no" if n == 0 else f"yes: {n} work{'s' if n != 1 else ''} "

    assert fields["Provider name and contact details"] == f"{studio.name}, {studio.contact}"
    assert fields["Versioned model name"].startswith(
        f"{Path(release['lora_file']).stem}, release {release['release_id']}: a ")
    assert config["profile"]["source"] in fields["Model dependencies"]
    placed = datetime.date.fromisoformat(fields["Date of placement on the market"])
    assert abs((datetime.date.today() - placed).days) <= 1
    n = len(trained)
    assert fields["Training data size"] == (
        f"Less than 1 million images ({n} image{'s' if n != 1 else ''})")
    assert fields["Latest date of data collection"].startswith(max(trained["retrieved"]))
    assert fields["Third-party works"].startswith(f"{int((~own & ~made).sum())}, ")
    assert fields["2.1 Publicly available datasets"].startswith(works(public))
    assert fields["2.6 Other sources of data"].startswith(works(own))
    assert fields["2.5 Synthetic data"].startswith(works(made))
    others = ~made & ~own & ~public
    licensed = others & trained["license"].isin(studio.permitted_licenses)
    assert fields["2.2.1 Private datasets commercially licensed by rightsholders"].startswith(
        works(licensed))
    assert fields["2.2.2 Private datasets obtained from other third parties"].startswith(
        works(others & ~licensed))
    rows = re.findall(r"^\| (2\.[\d.]+ [^|]+) \| ([^|]+) \| (\d+) \|$", summary, re.M)
    assert sum(int(count) for *_, count in rows) == n
    reserved = int(left_out["verdict_reason"].str.contains("training reserved").sum())
    assert fields["Refused for a reservation of rights embedded in the file"] == (
        f"{reserved} image{'s' if reserved != 1 else ''}")
    assert all(f"  - {protocol}" in summary for protocol in OPT_OUT_PROTOCOLS)
    assert not re.search(r"\b1 (works|images)\b", summary)
