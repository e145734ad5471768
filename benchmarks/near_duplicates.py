"""Near-duplicate detection: false positives on a house-style series, recall on copies.

    .venv/bin/python benchmarks/near_duplicates.py [--images 400]

The series: distinct drawings from four templates of the sample portfolio's generator (same
outline, organelles placed anew per drawing), as a studio's template series is. The copies:
the first 40 drawings re-saved, recompressed and resized. Prints, for the old rule (64-bit
dHash within 3 bits) and the pipeline's (256-bit pHash within NEAR_DUPLICATE_BITS), how many
distinct pairs and images of the series it would call duplicates, and the share of copies it
finds per kind of copy.
"""

from __future__ import annotations

import argparse
import io
import itertools
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from PIL import Image

from bioart_pipeline import sample_portfolio as sp
from bioart_pipeline.preprocessing.images import hash_distance, perceptual_hash
from bioart_pipeline.preprocessing.stage import NEAR_DUPLICATE_BITS

TEMPLATES = [
    ("mitochondrion", (768, 512), partial(sp.scene_mito, view="section", ratio=2.6, angle=0)),
    ("whole cell", (768, 768), partial(sp.scene_whole_cell, mitos=4, smooth_er=True,
                                       vesicles=4)),
    ("golgi", (768, 512), partial(sp.scene_golgi, cisternae=5, angle=0)),
    ("cross-section", (512, 512), partial(sp.scene_mito, view="transverse", ratio=1.15,
                                          angle=0)),
]


def series(count: int) -> list[tuple[str, Image.Image]]:
    drawings = []
    for index in range(count):
        name, size, scene = TEMPLATES[index % len(TEMPLATES)]
        data, _ = sp.render(sp.Spec("series", f"{name}_{index:04d}", size, scene))
        drawings.append((name, Image.open(io.BytesIO(data)).convert("RGB")))
    return drawings


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _scaled(image: Image.Image, factor: float, method: Image.Resampling) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), method)


COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "PNG re-saved": lambda im: im.copy(),
    "JPEG q85": lambda im: _jpeg(im, 85),
    "JPEG q60": lambda im: _jpeg(im, 60),
    "resized 50%": lambda im: _scaled(im, 0.5, Image.Resampling.LANCZOS),
    "resized 70% bilinear": lambda im: _scaled(im, 0.7, Image.Resampling.BILINEAR),
    "resized 50% + JPEG q70": lambda im: _jpeg(_scaled(im, 0.5, Image.Resampling.LANCZOS), 70),
    "upscaled 150%": lambda im: _scaled(im, 1.5, Image.Resampling.BICUBIC),
    "cropped 1% a side": lambda im: im.crop((im.width // 100, im.height // 100,
                                            im.width - im.width // 100,
                                            im.height - im.height // 100)),
}


def dhash64(image: Image.Image) -> str:
    """The rule before: 8x8 difference hash of the greyscale image."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def measure(name: str, hash_of: Callable[[Image.Image], str], limit: int,
            drawings: list[tuple[str, Image.Image]], originals: int) -> None:
    started = time.perf_counter()
    hashes = [hash_of(image) for _, image in drawings]
    pairs = [(i, j) for i, j in itertools.combinations(range(len(drawings)), 2)
             if drawings[i][0] == drawings[j][0]]
    false = [(i, j) for i, j in pairs if hash_distance(hashes[i], hashes[j]) <= limit]
    hit = {k for pair in false for k in pair}
    print(f"\n{name}: {len(false)} of {len(pairs)} distinct same-template pairs called "
          f"duplicates, {len(hit)} of {len(drawings)} drawings ({len(hit) / len(drawings):.1%})")
    for kind, make in COPIES.items():
        found = sum(hash_distance(hashes[i], hash_of(make(drawings[i][1]))) <= limit
                    for i in range(originals))
        print(f"  recall, {kind:24s} {found / originals:6.1%} ({found}/{originals})")
    print(f"  {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    count = parser.parse_args().images
    drawings = series(count)
    originals = min(40, count)
    print(f"{count} drawings from {len(TEMPLATES)} templates; {originals} of them copied "
          f"{len(COPIES)} ways")
    measure("before: 64-bit dHash, within 3 bits", dhash64, 3, drawings, originals)
    measure(f"now: 256-bit pHash, within {NEAR_DUPLICATE_BITS} bits", perceptual_hash,
            NEAR_DUPLICATE_BITS, drawings, originals)


if __name__ == "__main__":
    main()
