"""Walk the portfolio folders and describe every image file; never open a file for writing."""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from bioart_pipeline.common.files import sha256_bytes
from bioart_pipeline.portfolio.embedded import EMBEDDED_FIELDS, read_embedded
from bioart_pipeline.portfolio.provenance import (
    FOLDER_DEFAULT,
    PROVENANCE_FIELDS,
    SIDECAR_SUFFIX,
    read_sidecar,
)

CAPTION_SUFFIX = ".txt"  # artist captions beside the image

# The type is what the bytes say, never the suffix: a PNG saved as .jpg trains, a PDF saved
# as .png is named as a PDF.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "GIF")
_ACCEPTED = "accepted: PNG, JPEG, WebP, TIFF, GIF"
# Signatures of files that turn up in portfolios and that no image decoder reads.
_OTHER_TYPES = {b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive (.kra, .docx, ...)",
                b"<svg": "SVG vector art (export it as PNG)", b"<?xml": "an XML or SVG file"}
DEFAULT_MAX_PIXELS = 64_000_000  # a 8000x8000 scan; beyond that we suspect a decompression bomb
MAX_PIXELS_ADVICE = "raise `preprocessing: max_pixels` in the LoRA spec"


@dataclass(frozen=True)
class PortfolioFolder:
    path: Path
    role: str  # "train" or "regularization"


def scan_portfolio(
    folders: list[PortfolioFolder], display: Any = str, max_pixels: int = DEFAULT_MAX_PIXELS
) -> pd.DataFrame:
    """One row per file found (sidecars and hidden files aside); `status` is "ok" or the
    reason it cannot be used, so a stray GIF or PDF is listed, not silently skipped.

    `display` turns a path into the string stored in the table (relative to the data folder).
    """
    rows = []
    for folder in folders:
        if not folder.path.is_dir():
            raise FileNotFoundError(f"portfolio folder {folder.path} does not exist")
        for path in _entries(folder.path):
            if _is_sidecar_or_hidden(path):
                continue
            special = _not_a_regular_file(path, folder.path)
            rows.append(_row({"path": display(path), "role": folder.role, "file_bytes": 0},
                             status=special) if special
                        else describe_file(path, folder, display, max_pixels))
    return pd.DataFrame(rows, columns=_COLUMNS)


def _entries(root: Path) -> list[Path]:
    """Every entry under `root` that is not a real folder, sorted; symbolic links (to files or
    folders) are listed, never followed."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder) / name for name in files]
        found += [Path(folder) / name for name in dirs if (Path(folder) / name).is_symlink()]
    return sorted(found)


def _not_a_regular_file(path: Path, root: Path) -> str | None:
    """Why a link or special file is skipped: a link could bring in files from anywhere (and
    another party's rights with them); reading a FIFO or a device would never end."""
    if path.is_symlink():
        target = path.resolve()
        where = "inside" if target.is_relative_to(root.resolve()) else "outside"
        return (f"symbolic link to a {'folder' if target.is_dir() else 'file'} {where} the "
                "portfolio folder: not followed (copy the file in to use it)")
    mode = path.lstat().st_mode
    if not stat.S_ISREG(mode):
        kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
                else "device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "special file")
        return f"not a regular file ({kind}): skipped"
    return None


def _is_sidecar_or_hidden(path: Path) -> bool:
    name = path.name
    return (name.startswith(".") or name.endswith(SIDECAR_SUFFIX) or name == FOLDER_DEFAULT
            or path.suffix.lower() == CAPTION_SUFFIX)


def describe_file(path: Path, folder: PortfolioFolder, display: Any, max_pixels: int
                  ) -> dict[str, Any]:
    row: dict[str, Any] = {"path": display(path), "role": folder.role, "file_bytes": 0}
    try:
        stat_result = path.stat()
        row["file_bytes"] = stat_result.st_size
        # "the older file" wins a tie between duplicates (licensing/duplicates.py)
        row["modified"] = datetime.fromtimestamp(stat_result.st_mtime, UTC).isoformat(
            timespec="seconds")
        data = path.read_bytes()
        row["sha256"] = sha256_bytes(data)
    except OSError as exc:
        return _row(row, status=f"unreadable file: {exc.strerror or type(exc).__name__}")
    try:
        provenance, sidecar = read_sidecar(path, folder.path)
        row.update(provenance, license_sidecar=display(Path(sidecar)) if sidecar else "")
    except ValueError as exc:
        return _row(row, status=str(exc))
    if row["file_bytes"] == 0:
        return _row(row, status="empty file (0 bytes)")
    row.update(_image_header(data, max_pixels))  # opened from bytes: no path in any reason
    return _row(row)


def _image_header(data: bytes, max_pixels: int) -> dict[str, Any]:
    """Header facts and embedded rights; decoding pixels for training is the preprocessing
    stage's job."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                info = {
                    "format": image.format or "",
                    "mode": image.mode,
                    "width": image.width,
                    "height": image.height,
                    "frames": getattr(image, "n_frames", 1),
                    **read_embedded(image, data),
                }
    except Image.UnidentifiedImageError:
        return {"status": _not_an_image(data)}
    except Image.DecompressionBombError:
        return {"status": f"decompression bomb guard: the image declares more than "
                          f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels, which Pillow refuses to open "
                          f"(limit here {max_pixels:,}); {MAX_PIXELS_ADVICE}"}
    except Exception as exc:  # noqa: BLE001 - any decoder error means "not a usable image"
        return {"status": f"not a readable image: {type(exc).__name__}: {exc}"}
    info["status"] = _header_problem(info, max_pixels)
    return info


def _not_an_image(data: bytes) -> str:
    head = data[:64].lstrip()
    kind = next((name for magic, name in _OTHER_TYPES.items() if head.startswith(magic)),
                "no image format Pillow reads")
    return f"not a readable image: its bytes are {kind} ({_ACCEPTED})"


def _header_problem(info: dict[str, Any], max_pixels: int) -> str:
    """Why the header rules the file out, or "ok". An animation or a multi-page file is
    quarantined rather than trained on its first frame: which frame is the artwork is the
    artist's choice (a first frame is often blank or a title), and a LoRA trains on stills."""
    if info["format"] not in ACCEPTED_FORMATS:
        return f"unsupported format {info['format'] or 'unknown'} ({_ACCEPTED})"
    if info["frames"] > 1:
        what = "multi-page: {} pages" if info["format"] == "TIFF" else "animated: {} frames"
        return (what.format(info["frames"]) + "; export the one to train as a still PNG")
    if info["width"] * info["height"] > max_pixels:
        return (f"decompression bomb guard: {info['width']}x{info['height']} exceeds the "
                f"{max_pixels:,}-pixel limit; if the scan is genuine, {MAX_PIXELS_ADVICE}")
    return "ok"


_COLUMNS = ["sha256", "path", "role", "status", "format", "mode", "width", "height", "frames",
            "file_bytes", "modified", *PROVENANCE_FIELDS, "license_sidecar", *EMBEDDED_FIELDS]


def _row(row: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    if status is not None:
        row["status"] = status
    out = {column: row.get(column) for column in _COLUMNS}
    for column in ("sha256", "format", "mode", "modified", *PROVENANCE_FIELDS, "license_sidecar",
                   *EMBEDDED_FIELDS):
        out[column] = out[column] or ""
    for column in ("width", "height", "frames"):
        out[column] = int(out[column] or 0)
    return out
