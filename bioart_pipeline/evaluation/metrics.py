"""Model-free image measures: they mean the same on any model, random weights included."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image
from scipy import ndimage

_SIZE = 32
# Sliced Wasserstein over Lab: fixed unit directions (the three axes and 13 mixed ones) and
# quantile levels, so every palette is the same small matrix and distances are reproducible.
_DIRECTIONS = np.vstack([np.eye(3), np.random.default_rng(0).normal(size=(13, 3))])
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)
_QUANTILES = np.linspace(0.5 / 128, 1 - 0.5 / 128, 128)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..1) to CIE Lab (D65)."""
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def palette(images: list[Image.Image]) -> np.ndarray:
    """The colour distribution of a set of images: quantiles of their pooled Lab pixels along
    fixed directions (64x64 thumbnails, so every image weighs the same)."""
    pixels = np.concatenate([
        srgb_to_lab(np.asarray(i.convert("RGB").resize((64, 64)), dtype=np.float64) / 255.0)
        .reshape(-1, 3) for i in images])
    return np.quantile(pixels @ _DIRECTIONS.T, _QUANTILES, axis=0)


def palette_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Sliced Wasserstein-1 distance between two palettes, in Lab units (about Delta E):
    0 for the same colours in the same proportions; it grows with how far colours must move.
    (A coarse Lab histogram put cream paper, white and pastel pink in one bin: blind to the
    very shifts a style LoRA makes.)"""
    return float(np.abs(a - b).mean())


def _vector(image: Image.Image) -> np.ndarray:
    v = np.asarray(image.convert("RGB").resize((_SIZE, _SIZE)), dtype=np.float64).ravel()
    v = v - v.mean()
    return v / (np.linalg.norm(v) or 1.0)


def similarity(a: Image.Image, b: Image.Image) -> float:
    """Correlation of small colour thumbnails: 1.0 for the same picture."""
    return float(_vector(a) @ _vector(b))


def nearest_similarity(image: Image.Image, references: list[np.ndarray]) -> float:
    """Similarity to the closest training image (pass `reference_vectors`): memorization."""
    v = _vector(image)
    return float(max(v @ r for r in references)) if references else 0.0


def reference_vectors(images: list[Image.Image]) -> list[np.ndarray]:
    return [_vector(i) for i in images]


def diversity(images: list[Image.Image]) -> float:
    """Mean pairwise dissimilarity among seeds: 0 when every seed gives the same image."""
    pairs = list(itertools.combinations(images, 2))
    if not pairs:
        return 0.0
    return float(np.mean([1.0 - similarity(a, b) for a, b in pairs]))


def pixel_change(images: list[Image.Image], base: list[Image.Image]) -> float:
    """Mean absolute pixel difference (0..1) against the base model's images, seed by seed."""
    diffs = [np.abs(np.asarray(a.convert("RGB"), dtype=np.float64)
                    - np.asarray(b.convert("RGB").resize(a.size), dtype=np.float64)).mean() / 255
             for a, b in zip(images, base, strict=True)]
    return float(np.mean(diffs))


# Structure: where the ink lies, at the scale of the subject's parts, not its strokes.
_LAYOUT_SIZE = 64
_INK_FULL = 25.0  # Delta E from the paper at which a pixel counts as fully inked
_LAYOUT_BLUR = 2.0  # pixels of 64: a stroke may thicken or move by about 3 % of the side


def ink_map(image: Image.Image) -> np.ndarray:
    """How far each pixel lies from the paper colour (the median of the border, in Lab),
    0..1: the drawing's layout whatever its colours (a blue neuron and its orange restyle
    ink the same pixels), blurred so that line weight and small shifts do not count."""
    rgb = image.convert("RGB").resize((_LAYOUT_SIZE, _LAYOUT_SIZE), Image.Resampling.BOX)
    lab = srgb_to_lab(np.asarray(rgb, dtype=np.float64) / 255.0)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    ink = np.clip(np.linalg.norm(lab - np.median(border, axis=0), axis=-1) / _INK_FULL, 0, 1)
    return ndimage.gaussian_filter(ink, _LAYOUT_BLUR)


def structure_kept(image: Image.Image, base: Image.Image) -> float:
    """Correlation of the two ink maps (-1..1): 1.0 when the LoRA's image keeps the base
    image's layout (same seed, same prompt), near 0 when the subject moved, melted or was
    replaced; two blank pages count as the same layout, one blank page as none of it."""
    a, b = ink_map(image).ravel(), ink_map(base).ravel()
    a, b = a - a.mean(), b - b.mean()
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms < 1e-12:
        return 1.0 if max(np.abs(a).max(), np.abs(b).max()) < 1e-6 else 0.0
    return float(a @ b / norms)
