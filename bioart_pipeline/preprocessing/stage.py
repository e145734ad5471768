"""The preprocessing stage: raw portfolio table in, preprocessed table (one row per file) out.

Outputs are content-addressed: the key hashes the source bytes and every setting that changes
the pixels, so an unchanged image is never processed twice, across runs and partitions.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from tqdm import tqdm

from bioart_pipeline.common.files import (
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    sha256_bytes,
    sha256_json,
)
from bioart_pipeline.portfolio.ingest import DEFAULT_MAX_PIXELS
from bioart_pipeline.preprocessing.buckets import fit_to_bucket, nearest_bucket
from bioart_pipeline.preprocessing.images import ImageRejected, load_rgb, perceptual_hash, sharpness

# Bump when the pixel pipeline or the facts recorded change: old cache entries are ignored.
# 3: the source size and the crop offset, for SDXL's micro-conditioning.
# 4: a 256-bit perceptual hash (pHash) instead of the 64-bit difference hash.
PREPROCESS_VERSION = 4
# pHash bits (of 256) within which two images are near duplicates: re-saved, resized and
# recompressed copies stay under it, distinct drawings of one template far above it
# (benchmarks/near_duplicates.py). The license manifest groups them (licensing/duplicates.py).
NEAR_DUPLICATE_BITS = 12


@dataclass(frozen=True)
class PreprocessOptions:
    background: str = "#FFFFFF"
    resolution: int = 1024
    bucket_step: int = 64
    min_side: int = 512
    blur_threshold: float = 20.0
    max_pixels: int = DEFAULT_MAX_PIXELS

    def cache_key(self, source_sha256: str) -> str:
        pixels = {k: v for k, v in asdict(self).items()
                  if k in ("background", "resolution", "bucket_step")}
        return sha256_json({"source": source_sha256, "v": PREPROCESS_VERSION, **pixels})


@dataclass
class PreprocessResult:
    table: pd.DataFrame
    processed: int
    reused: int


def preprocess_portfolio(raw: pd.DataFrame, resolve: Any, cache_dir: Path,
                         options: PreprocessOptions) -> PreprocessResult:
    """`resolve` maps a table path back to the file on disk. Duplicates stay "ok" here: which
    copy trains is decided with the licences in hand (licensing/duplicates.py)."""
    rows = []
    counts = {"processed": 0, "reused": 0}
    for record in tqdm(raw.sort_values("path").to_dict("records"), desc="preprocess",
                       unit="img", leave=False):
        row = {"source_sha256": record["sha256"], "path": record["path"], "role": record["role"]}
        row.update(_decide(record, resolve, cache_dir, options, counts))
        rows.append(_complete(row))
    return PreprocessResult(pd.DataFrame(rows, columns=_COLUMNS), **counts)


def _decide(record: dict[str, Any], resolve: Any, cache_dir: Path, options: PreprocessOptions,
            counts: dict[str, int]) -> dict[str, Any]:
    if record["status"] != "ok":
        return {"status": record["status"]}
    short = min(record["width"], record["height"])
    if short < options.min_side:
        return {"status": f"too small: short side {short} px < {options.min_side} px"}
    facts = _cached_or_process(resolve(record["path"]), record["sha256"], cache_dir, options,
                               counts)
    if "rejected" in facts:
        return {"status": facts["rejected"]}
    if facts["sharpness"] < options.blur_threshold:
        return {**facts, "status": f"blurry: sharpness {facts['sharpness']:.1f} < "
                                   f"{options.blur_threshold} (variance of Laplacian)"}
    return {**facts, "status": "ok"}


def _cached_or_process(source: Path, source_sha: str, cache_dir: Path,
                       options: PreprocessOptions, counts: dict[str, int]) -> dict[str, Any]:
    key = options.cache_key(source_sha)
    facts_file = cache_dir / f"{key}.json"
    if _rejected(facts_file) or (facts_file.exists() and (cache_dir / f"{key}.png").exists()):
        counts["reused"] += 1
        return read_json(facts_file)
    counts["processed"] += 1
    facts = _process(source, key, cache_dir, options)
    atomic_write_json(facts_file, facts)
    return facts


def _rejected(facts_file: Path) -> bool:
    return facts_file.exists() and "rejected" in read_json(facts_file)


def _process(source: Path, key: str, cache_dir: Path, options: PreprocessOptions
             ) -> dict[str, Any]:
    try:
        image, composited = load_rgb(source, options.background, options.max_pixels)
    except ImageRejected as exc:
        return {"rejected": str(exc)}
    bucket = nearest_bucket(image.width, image.height, options.resolution, options.bucket_step)
    size, box, trimmed = fit_to_bucket(image.width, image.height, bucket)
    out = image.resize(size, Image.Resampling.LANCZOS).crop(box)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG", optimize=False)
    data = buffer.getvalue()
    atomic_write_bytes(cache_dir / f"{key}.png", data)
    return {
        "key": key, "preprocessed_sha256": sha256_bytes(data),
        "bucket_width": bucket[0], "bucket_height": bucket[1], "trimmed": round(trimmed, 4),
        # SDXL's micro-conditioning: the size before resizing, and where the bucket's crop
        # starts in the resized image (kohya's and the SDXL paper's convention).
        "original_width": image.width, "original_height": image.height,
        "crop_left": box[0], "crop_top": box[1],
        "sharpness": round(sharpness(image), 2), "phash": perceptual_hash(image),
        "composited": composited,
    }


_COLUMNS = ["source_sha256", "path", "role", "status", "key", "preprocessed_sha256",
            "bucket_width", "bucket_height", "original_width", "original_height", "crop_left",
            "crop_top", "trimmed", "sharpness", "phash", "composited"]


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in _COLUMNS}
    for c in ("key", "preprocessed_sha256", "phash"):
        out[c] = out[c] or ""
    for c in ("bucket_width", "bucket_height", "original_width", "original_height", "crop_left",
              "crop_top"):
        out[c] = int(out[c] or 0)
    for c in ("trimmed", "sharpness"):
        out[c] = float(out[c] or 0.0)
    out["composited"] = bool(out["composited"])
    return out


def preprocessed_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.png"
