"""Every kind of bad input ends in the quarantine with its reason; good images go on."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from bioart_pipeline.portfolio.ingest import PortfolioFolder, scan_portfolio
from bioart_pipeline.preprocessing.stage import (
    PreprocessOptions,
    preprocess_portfolio,
    preprocessed_file,
)
from tests.conftest import drawing

MAX_PIXELS = 2_000_000


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    root = tmp_path / "portfolio"
    root.mkdir()
    for seed in range(3):
        drawing(seed).save(root / f"good_{seed}.png")
    drawing(10).save(root / "ünïcode name (1).png")
    png = io.BytesIO()
    drawing(11).save(png, format="PNG")
    (root / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    drawing(12).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    grey16 = (np.asarray(drawing(13).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(grey16).save(root / "sixteen_bit.png")
    drawing(14, mode="RGBA").convert("P", palette=Image.Palette.ADAPTIVE).save(
        root / "palette_alpha.png", transparency=0)
    _rotated_jpeg(root / "rotated.jpg")
    frames = [drawing(15), drawing(16)]
    frames[0].save(root / "animated.png", save_all=True, append_images=frames[1:])
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("not an image at all")
    (root / "brochure.png").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    drawing(22).save(root / "png_named.jpg", format="PNG")  # the bytes decide, not the suffix
    drawing(23).save(root / "scan_without_suffix", format="PNG")
    drawing(24).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "still.gif")
    drawing(17, size=(1600, 1400)).save(root / "huge.png")
    shutil.copy(root / "good_0.png", root / "good_0_copy.png")
    drawing(1).save(root / "good_1_resaved.jpg", quality=90)
    drawing(18).filter(ImageFilter.GaussianBlur(12)).save(root / "blurry.png")
    drawing(19, size=(300, 300)).save(root / "tiny.png")
    drawing(21, size=(1000, 520)).save(root / "wide.png")
    return root


def _rotated_jpeg(path: Path) -> None:
    """Stored landscape with EXIF orientation 6: displayed portrait."""
    exif = Image.Exif()
    exif[0x0112] = 6
    drawing(20, size=(800, 600)).save(path, exif=exif)


@pytest.fixture
def outcome(portfolio: Path, tmp_path: Path) -> pd.DataFrame:
    raw = scan_portfolio([PortfolioFolder(portfolio, "train")], display=lambda p: p.name,
                         max_pixels=MAX_PIXELS)
    options = PreprocessOptions(resolution=256, bucket_step=32, min_side=512,
                                max_pixels=MAX_PIXELS)
    result = preprocess_portfolio(raw, lambda name: portfolio / name, tmp_path / "cache",
                                  options)
    return result.table.set_index("path")


@pytest.mark.parametrize(("name", "reason"), [
    ("truncated.png", "truncated"),
    ("animated.png", "animated"),
    ("animated.gif", "animated: 2 frames; export the one to train as a still PNG"),
    ("empty.png", "empty file"),
    ("notes.png", "not a readable image: its bytes are no image format Pillow reads"),
    ("brochure.png", "not a readable image: its bytes are a PDF document"),
    ("huge.png", "decompression bomb"),
    ("blurry.png", "blurry"),
    ("tiny.png", "too small: short side 300 px"),
])
def test_bad_input_is_quarantined_with_its_reason(outcome: pd.DataFrame, name: str,
                                                  reason: str) -> None:
    assert reason in outcome.at[name, "status"]


# Copies pass here: the license manifest picks which one trains (tests/test_data_gates.py).
@pytest.mark.parametrize("name", ["good_0.png", "good_1.png", "good_2.png", "cmyk.jpg",
                                  "good_0_copy.png", "good_1_resaved.jpg",
                                  "sixteen_bit.png", "palette_alpha.png", "rotated.jpg",
                                  "ünïcode name (1).png", "png_named.jpg",
                                  "scan_without_suffix", "still.gif"])
def test_good_and_convertible_images_are_processed(outcome: pd.DataFrame, name: str,
                                                   tmp_path: Path) -> None:
    assert outcome.at[name, "status"] == "ok"
    with Image.open(preprocessed_file(tmp_path / "cache", outcome.at[name, "key"])) as out:
        assert out.mode == "RGB"
        assert out.size == (outcome.at[name, "bucket_width"], outcome.at[name, "bucket_height"])


def test_exif_rotation_is_applied(outcome: pd.DataFrame) -> None:
    row = outcome.loc["rotated.jpg"]
    assert row["bucket_height"] > row["bucket_width"]


@pytest.mark.parametrize(("name", "original", "cropped"), [
    ("good_0.png", (640, 640), False),  # square into a square bucket: nothing trimmed
    ("rotated.jpg", (600, 800), True),  # as displayed (EXIF), not as stored
    ("wide.png", (1000, 520), True),
])
def test_the_source_size_and_crop_offset_are_recorded_for_micro_conditioning(
        outcome: pd.DataFrame, name: str, original: tuple[int, int], cropped: bool) -> None:
    row = outcome.loc[name]
    assert (row["original_width"], row["original_height"]) == original
    assert (row["bucket_width"], row["bucket_height"]) != original
    assert ((row["crop_left"], row["crop_top"]) != (0, 0)) is cropped


def test_transparency_becomes_the_background_colour(outcome: pd.DataFrame,
                                                    tmp_path: Path) -> None:
    with Image.open(preprocessed_file(tmp_path / "cache",
                                      outcome.at["palette_alpha.png", "key"])) as out:
        assert out.getpixel((0, 0)) == (255, 255, 255)
    assert outcome.at["palette_alpha.png", "composited"]  # captions get "white background"
    assert not outcome.at["rotated.jpg", "composited"]


def test_sixteen_bit_is_scaled_not_clipped(outcome: pd.DataFrame, tmp_path: Path) -> None:
    with Image.open(preprocessed_file(tmp_path / "cache",
                                      outcome.at["sixteen_bit.png", "key"])) as out:
        pixels = np.asarray(out)
    assert pixels.max() == 255 and 0 < pixels.mean() < 255 and len(np.unique(pixels)) > 4


def test_source_files_are_never_modified(portfolio: Path, tmp_path: Path) -> None:
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in portfolio.iterdir()}
    raw = scan_portfolio([PortfolioFolder(portfolio, "train")], display=lambda p: p.name)
    preprocess_portfolio(raw, lambda name: portfolio / name, tmp_path / "c2",
                         PreprocessOptions(resolution=256, bucket_step=32))
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in portfolio.iterdir()}
    assert before == after


def test_unchanged_images_are_not_processed_again(portfolio: Path, tmp_path: Path) -> None:
    options = PreprocessOptions(resolution=256, bucket_step=32)
    folders = [PortfolioFolder(portfolio, "train")]
    first = preprocess_portfolio(scan_portfolio(folders, display=lambda p: p.name),
                                 lambda n: portfolio / n, tmp_path / "c3", options)
    drawing(42).save(portfolio / "new_one.png")
    second = preprocess_portfolio(scan_portfolio(folders, display=lambda p: p.name),
                                  lambda n: portfolio / n, tmp_path / "c3", options)
    assert first.processed > 5
    assert second.processed == 1
