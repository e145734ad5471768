"""Decode any accepted image into 8-bit sRGB, flattened onto the spec's background colour."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageCms, ImageOps

from bioart_pipeline.portfolio.ingest import MAX_PIXELS_ADVICE


class ImageRejected(ValueError):
    """The image cannot be used; the message is the quarantine reason."""


def load_rgb(path: Path, background: str, max_pixels: int) -> tuple[Image.Image, bool]:
    """Fully decode, apply EXIF orientation, convert to sRGB and composite alpha.
    Returns the image and whether it had transparent pixels (composited onto `background`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.width * opened.height > max_pixels:
                    raise ImageRejected(f"{opened.width}x{opened.height} is over the "
                                        f"{max_pixels:,}-pixel limit; {MAX_PIXELS_ADVICE}")
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except ImageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data surfaces as many types
        detail = str(exc).replace(str(path), path.name)  # no absolute path in a reason
        raise ImageRejected(f"corrupt or truncated image data: {type(exc).__name__}: {detail}"
                            ) from exc
    srgb = to_srgb(image)
    composited = srgb.mode == "RGBA" and srgb.getchannel("A").getextrema()[0] < 255
    return flatten(srgb, background), composited


def to_srgb(image: Image.Image) -> Image.Image:
    """8-bit RGB or RGBA in sRGB, whatever the source mode or colour profile."""
    image = _to_8bit(image)
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        image = _apply_icc(image, icc)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA") or (image.mode == "L" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    return image


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale scaled into 8 bits, rather than clipped by convert('L')."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L")
    if image.mode == "F":
        array = np.clip(np.asarray(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(array, mode="L")
    return image


def _apply_icc(image: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        return image  # an unreadable profile: keep the pixels as they are
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    srgb = ImageCms.createProfile("sRGB")
    converted = ImageCms.profileToProfile(image, source, srgb, outputMode=out_mode)
    converted.info.pop("icc_profile", None)
    return converted


def flatten(image: Image.Image, background: str) -> Image.Image:
    """Composite transparency onto a solid colour: a transparent icon must not train as a black
    blob (dropping alpha would expose whatever colour the transparent pixels hold)."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGBA", image.size, _hex_to_rgb(background) + (255,))
    return Image.alpha_composite(canvas, image).convert("RGB")


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def sharpness(image: Image.Image, side: int = 512) -> float:
    """Variance of the Laplacian on a greyscale copy at a fixed size: low means blurry."""
    grey = image.convert("L")
    scale = side / min(grey.size)
    if scale < 1:
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)),
                           Image.Resampling.BILINEAR)
    a = np.asarray(grey, dtype=np.float64)
    laplacian = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4 * a[1:-1, 1:-1]
    return float(laplacian.var())


def perceptual_hash(image: Image.Image) -> str:
    """256-bit pHash as hex: re-saved, resized and recompressed copies differ in a few bits,
    distinct drawings of one house-style template in dozens (benchmarks/near_duplicates.py)."""
    return str(imagehash.phash(image, hash_size=16))


def hash_distance(a: str, b: str) -> int:
    """Bits that differ between two perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
