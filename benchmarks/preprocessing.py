"""Preprocessing throughput at SDXL size, and the cost of a rerun after adding one image.

    .venv/bin/python benchmarks/preprocessing.py [--images 200]

Prints images/s for a first run over N fresh 1024 px illustrations, then the time of a rerun
after one image is added, as a ratio to the first run (the cache should make it small).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bioart_pipeline.portfolio.ingest import PortfolioFolder, scan_portfolio
from bioart_pipeline.preprocessing.stage import PreprocessOptions, preprocess_portfolio

from common import illustration

SIZES = [(1024, 1024), (1280, 896), (896, 1280), (1536, 1024)]


def run(folder: Path, cache: Path) -> tuple[float, int]:
    started = time.perf_counter()
    raw = scan_portfolio([PortfolioFolder(folder, "train")], display=lambda p: p.name)
    result = preprocess_portfolio(raw, lambda name: folder / name, cache, PreprocessOptions())
    return time.perf_counter() - started, result.processed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    count = parser.parse_args().images
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "portfolio", Path(tmp) / "cache"
        folder.mkdir()
        for seed in range(count):
            picture = illustration(seed, SIZES[seed % len(SIZES)], shapes=12)
            picture.save(folder / f"img_{seed:04d}.png")
        first, processed = run(folder, cache)
        print(f"first run: {processed} images in {first:.1f} s = {processed / first:.1f} "
              "images/s (decode, flatten, bucket to ~1 MP, sharpness, hash, write PNG)")
        illustration(count, SIZES[count % len(SIZES)], shapes=12).save(folder / "added.png")
        rerun, processed = run(folder, cache)
        print(f"rerun after adding one image: {processed} processed in {rerun:.2f} s "
              f"= {rerun / first:.3f} x the first run")


if __name__ == "__main__":
    main()
