"""The embedded sample portfolio: reproducible to the byte, complete, licensed as documented."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bioart_pipeline.sample_portfolio import write_sample_portfolio

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "portfolio"
FOLDERS = ("cells", "mitochondria")
LICENSE_KEYS = {"license", "author", "source", "retrieved", "license_url", "attribution"}
REQUIRED_KEYS = {"license", "author", "source", "retrieved"}
# The pipeline adds trigger words and strips style words itself: captions carry neither.
FORBIDDEN_IN_CAPTIONS = ("cellulastyle", "cellulamito", "flat vector", "vector art", "cartoon",
                         "clip art", "illustration")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("portfolio")
    write_sample_portfolio(root)
    return root


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content(path: Path) -> str:
    """Pixels for PNGs (a newer zlib may pack the same pixels differently), bytes otherwise."""
    if path.suffix != ".png":
        return _digest(path.read_bytes())
    with Image.open(path) as image:
        return f"{image.mode} {image.size} {_digest(image.tobytes())}"


def _images(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def _overrides(root: Path) -> dict[str, dict[str, object]]:
    return {p.relative_to(root).as_posix().removesuffix(".license.yaml"):
            yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted(root.rglob("*.png.license.yaml"))}


def _spdx(text: str) -> str:
    return "-".join(text.upper().split())


def _png_chunks(data: bytes) -> list[str]:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunks.append(data[pos + 4:pos + 8].decode("ascii"))
        pos += 12 + length
    return chunks


def test_two_generations_are_identical_byte_for_byte(generated: Path, tmp_path: Path) -> None:
    write_sample_portfolio(tmp_path)
    first, second = _files(generated), _files(tmp_path)
    assert list(first) == list(second)
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_committed_portfolio_equals_a_fresh_generation(generated: Path) -> None:
    assert COMMITTED.is_dir(), "run: python -m bioart_pipeline.sample_portfolio"
    committed, fresh = _files(COMMITTED), _files(generated)
    assert sorted(committed) == sorted(fresh), "stale or missing files in data/portfolio"
    changed = [n for n, p in fresh.items() if _content(p) != _content(committed[n])]
    assert not changed, f"regenerate data/portfolio: {changed}"


def test_images_are_large_enough_and_varied(generated: Path) -> None:
    images = _images(generated)
    assert len(images) >= 24
    assert len(list((generated / "cells").glob("*.png"))) >= 16
    assert len(list((generated / "mitochondria").glob("*.png"))) >= 15
    sizes = set()
    for path in images:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert min(image.size) >= 512, path.name
            sizes.add(image.size)
    assert {(512, 768), (768, 512), (896, 640), (640, 896)} <= sizes  # aspect bucketing matters


def test_some_images_are_transparent_icons(generated: Path) -> None:
    transparent = {}
    for path in _images(generated):
        with Image.open(path) as image:
            if image.mode == "RGBA" and image.getextrema()[3][0] == 0:
                transparent[path.name] = path.parent.name
    assert 3 <= list(transparent.values()).count("cells") <= 4
    assert 1 <= list(transparent.values()).count("mitochondria") <= 2


def test_pngs_carry_no_text_or_time_metadata(generated: Path) -> None:
    for path in _images(generated):
        assert set(_png_chunks(path.read_bytes())) <= {"IHDR", "IDAT", "IEND"}, path.name


def test_every_image_has_a_one_line_content_caption(generated: Path) -> None:
    for path in _images(generated):
        caption_file = path.with_suffix(".txt")
        assert caption_file.is_file(), f"{path.name} has no caption"
        caption = caption_file.read_text(encoding="utf-8").strip()
        assert caption and "\n" not in caption, path.name
        assert not any(word in caption.lower() for word in FORBIDDEN_IN_CAPTIONS), caption
    mito = (generated / "mitochondria" / "mito_crosssection_01.txt").read_text(encoding="utf-8")
    assert "cristae" in mito and "matrix" in mito


def test_folder_defaults_are_the_studio_own_work(generated: Path) -> None:
    for folder in FOLDERS:
        default = yaml.safe_load((generated / folder / "_default.license.yaml").read_text())
        assert default == {"license": "LicenseRef-CellulaStudio-OwnWork",
                           "author": "Cellula Studio", "source": "own work",
                           "retrieved": "2026-01-15"}


def test_per_image_license_overrides(generated: Path) -> None:
    overrides = _overrides(generated)
    for name, fields in overrides.items():
        assert (generated / name).is_file(), f"sidecar without image: {name}"
        assert REQUIRED_KEYS <= set(fields) <= LICENSE_KEYS, name
        assert isinstance(fields["retrieved"], str), "quote the date: it must stay a string"
        datetime.date.fromisoformat(fields["retrieved"])
        assert str(fields["source"]).startswith("https://example.org/"), name
    spdx = {name: _spdx(str(fields["license"])) for name, fields in overrides.items()}
    nc = [n for n, s in spdx.items() if "-NC" in s]
    by = [n for n, s in spdx.items() if s.startswith("CC-BY") and "-NC" not in s]
    cc0 = [n for n, s in spdx.items() if s.startswith("CC0")]
    assert len(nc) == 1 and nc[0].startswith("cells/")
    assert overrides[nc[0]].get("license_url")
    assert len(by) == 1 and by[0].startswith("cells/")
    assert overrides[by[0]]["license_url"] == "https://creativecommons.org/licenses/by/4.0/"
    assert overrides[by[0]].get("attribution")
    assert sorted(n.split("/")[0] for n in cc0) == ["cells", "mitochondria"]
    assert all(overrides[n]["license"] == "CC0 1.0" for n in cc0)  # free text on purpose
