"""Links and special files in a portfolio folder are listed with a reason, never followed or
read; quarantine reasons name the limit and the option to change, and no absolute path."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.portfolio.changes import hash_cache, inputs_fingerprint
from bioart_pipeline.portfolio.ingest import PortfolioFolder, scan_portfolio
from bioart_pipeline.specs import load_spec
from tests.conftest import drawing, quick_spec


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    root = tmp_path / "portfolio"
    (root / "series").mkdir(parents=True)
    drawing(1).save(root / "own.png")
    elsewhere = tmp_path / "someone_elses"
    elsewhere.mkdir()
    drawing(2).save(elsewhere / "their.png")
    (root / "link_out.png").symlink_to(elsewhere / "their.png")
    (root / "linked_folder").symlink_to(elsewhere, target_is_directory=True)
    (root / "link_in.png").symlink_to(root / "own.png")
    os.mkfifo(root / "pipe.png")
    (root / "notes.png").write_text("not an image")
    drawing(3, size=(240, 200)).resize((120, 100)).save(root / "series" / "big.png")
    return root


def _scan(root: Path, max_pixels: int = 64_000_000) -> pd.DataFrame:
    table = scan_portfolio([PortfolioFolder(root, "train")],
                           display=lambda p: p.relative_to(root.parent).as_posix(),
                           max_pixels=max_pixels)
    return table.set_index("path")


def test_links_and_special_files_are_listed_not_followed(portfolio: Path,
                                                         tmp_path: Path) -> None:
    before = {p: p.lstat().st_mtime_ns for p in tmp_path.rglob("*")}
    table = _scan(portfolio)
    status = table["status"]
    assert status["portfolio/own.png"] == "ok"
    assert status["portfolio/link_out.png"].startswith(
        "symbolic link to a file outside the portfolio folder: not followed")
    assert status["portfolio/linked_folder"].startswith(
        "symbolic link to a folder outside the portfolio folder: not followed")
    assert status["portfolio/link_in.png"].startswith(
        "symbolic link to a file inside the portfolio folder: not followed")
    assert status["portfolio/pipe.png"] == "not a regular file (FIFO): skipped"  # not read
    assert not [p for p in table.index if "their.png" in p]  # nothing from the linked folder
    skipped = ["portfolio/link_out.png", "portfolio/linked_folder", "portfolio/link_in.png",
               "portfolio/pipe.png"]
    assert (table.loc[skipped, "sha256"] == "").all()  # never opened
    assert {p: p.lstat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_reasons_name_the_limit_and_the_option_and_no_absolute_path(
        portfolio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _scan(portfolio, max_pixels=10_000)
    assert table.at["portfolio/series/big.png", "status"] == (
        "decompression bomb guard: 120x100 exceeds the 10,000-pixel limit; if the scan is "
        "genuine, raise `preprocessing: max_pixels` in the LoRA spec")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # Pillow's own refusal: > 10,000
    bomb = _scan(portfolio).at["portfolio/series/big.png", "status"]
    assert bomb.startswith("decompression bomb guard: the image declares more than 10,000 "
                           "pixels") and "`preprocessing: max_pixels`" in bomb
    assert "bytes are no image format Pillow reads" in table.at["portfolio/notes.png", "status"]
    assert not [s for s in table["status"] if str(tmp_path) in s]


def test_the_inputs_fingerprint_counts_a_link_by_its_target_and_never_reads_it(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "loras").mkdir(parents=True)
    (data / "portfolio").mkdir()
    drawing(1).save(data / "portfolio" / "own.png")
    outside = tmp_path / "outside.png"
    drawing(2).save(outside)
    (data / "portfolio" / "link.png").symlink_to(outside)
    (data / "loras" / "linked.yaml").write_text(yaml.safe_dump(quick_spec()))
    workspace = Workspace(data, tmp_path / "outputs")
    spec = load_spec(data / "loras" / "linked.yaml")

    def fingerprint() -> str:
        cache = hash_cache(workspace)
        value = inputs_fingerprint(workspace, spec, cache)
        assert not [k for k in cache.entries if "link.png" in k or "outside" in k]
        return value

    first = fingerprint()
    drawing(3).save(outside)  # what the link points at changes: not an input
    assert fingerprint() == first
    (data / "portfolio" / "link.png").unlink()
    (data / "portfolio" / "link.png").symlink_to(data / "portfolio" / "own.png")
    assert fingerprint() != first
