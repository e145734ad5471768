"""Deterministic generator of the embedded sample portfolio (Cellula Studio house style).

Flat-vector cell illustrations: solid fills, one dark outline weight per image size, a small
light crescent on the upper-left of every organelle, the textbook palette. Every image gets an
artist caption (`<stem>.txt`); licenses come from a folder default plus a few per-image
overrides, so the pipeline's license rules have something to decide.

    python -m bioart_pipeline.sample_portfolio [ROOT]     # default: <repo>/data/portfolio
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image, ImageDraw

Point = tuple[float, float]
Color = tuple[int, int, int]
Circle = tuple[float, float, float]
Crista = tuple[Point, Point, float]  # base on the inner membrane, inward direction, depth

SS = 3  # Pillow polygons are aliased: draw 3x larger, then box-filter down
LINE_DIVISOR = 170  # outline width = short side / 170, so every image has the same weight
LIGHT = (-math.sqrt(0.5), -math.sqrt(0.5))  # light comes from the upper left

OUTLINE: Color = (43, 38, 64)
WHITE: Color = (255, 255, 255)
PALE: Color = (251, 248, 252)
CYTOPLASM, CYTOPLASM_HI = (249, 205, 218), (253, 229, 236)
MEMBRANE, MEMBRANE_CORE = (240, 165, 60), (252, 228, 184)
ENVELOPE, NUCLEOPLASM, NUCLEOPLASM_HI = (98, 84, 176), (142, 130, 216), (182, 173, 237)
NUCLEOLUS, NUCLEOLUS_HI, CHROMATIN = (72, 58, 146), (104, 90, 182), (118, 104, 198)
MITO_MEMBRANE, MITO_OUTER_HI = (222, 82, 58), (240, 140, 110)
MITO_MATRIX, MITO_MATRIX_HI = (250, 178, 122), (253, 212, 176)
ER, ER_HI, RIBOSOME = (88, 180, 216), (166, 220, 240), (46, 72, 140)
GOLGI, GOLGI_HI = (238, 188, 58), (250, 224, 146)
PROTEIN, PROTEIN_HI = (108, 184, 150), (168, 218, 192)

OWN_WORK = {"license": "LicenseRef-CellulaStudio-OwnWork", "author": "Cellula Studio",
            "source": "own work", "retrieved": "2026-01-15"}
LICENSE_OVERRIDES: dict[str, dict[str, str]] = {
    "cells/smooth_er_01.png": {
        "license": "CC0 1.0", "author": "Mara Lindqvist",
        "source": "https://example.org/commons/smooth-er-tubules", "retrieved": "2025-11-03"},
    "mitochondria/mito_cluster_01.png": {
        "license": "CC0 1.0", "author": "Tomasz Wren",
        "source": "https://example.org/commons/mitochondria-cluster", "retrieved": "2025-12-08"},
    "cells/golgi_stack_02.png": {
        "license": "CC BY 4.0", "author": "Aiyana Brooks",
        "source": "https://example.org/brooks/golgi-stack", "retrieved": "2025-10-21",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "attribution": "Golgi stack by Aiyana Brooks, licensed under CC BY 4.0"},
    "cells/whole_cell_04.png": {
        "license": "CC-BY-NC-4.0", "author": "Henrik Solberg",
        "source": "https://example.org/solberg/animal-cell", "retrieved": "2025-09-30",
        "license_url": "https://creativecommons.org/licenses/by-nc/4.0/"},
}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# --- geometry -------------------------------------------------------------------------------

def ellipse_points(rx: float, ry: float, exponent: float = 2.0,
                   wobble: Sequence[tuple[int, float, float]] = (), count: int = 200
                   ) -> list[Point]:
    """Superellipse (exponent 2 = ellipse, larger = capsule) with optional low-frequency wobble."""
    points = []
    for i in range(count):
        t = 2 * math.pi * i / count
        ct, st = math.cos(t), math.sin(t)
        k = 1 + sum(amp * math.sin(freq * t + phase) for freq, amp, phase in wobble)
        points.append((k * rx * math.copysign(abs(ct) ** (2 / exponent), ct),
                       k * ry * math.copysign(abs(st) ** (2 / exponent), st)))
    return points


def wobble_terms(rng: random.Random, amount: float) -> list[tuple[int, float, float]]:
    return [(f, amount * rng.uniform(0.4, 1.0) / f, rng.uniform(0, 2 * math.pi))
            for f in (2, 3, 5)]


def place(points: Sequence[Point], cx: float, cy: float, angle: float = 0.0,
          curvature: float = 0.0) -> list[Point]:
    """Local -> canvas: bend (y += curvature * x^2), rotate, translate."""
    ca, sa = math.cos(angle), math.sin(angle)
    out = []
    for x, y in points:
        y += curvature * x * x
        out.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return out


def _signed_area(points: Sequence[Point]) -> float:
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs)


def normals(points: Sequence[Point], closed: bool = True) -> list[Point]:
    """Unit normals; outward for closed shapes whatever their winding."""
    n = len(points)
    sign = -1.0 if closed and _signed_area(points) < 0 else 1.0
    out = []
    for i in range(n):
        if closed:
            (ax, ay), (bx, by) = points[i - 1], points[(i + 1) % n]
        else:
            (ax, ay), (bx, by) = points[max(i - 1, 0)], points[min(i + 1, n - 1)]
        length = math.hypot(bx - ax, by - ay) or 1.0
        out.append((sign * (by - ay) / length, -sign * (bx - ax) / length))
    return out


def offset(points: Sequence[Point], distance: float, closed: bool = True) -> list[Point]:
    """Shift along the normals: an even-thickness membrane needs a constant-distance copy."""
    return [(x + nx * distance, y + ny * distance)
            for (x, y), (nx, ny) in zip(points, normals(points, closed), strict=True)]


def translate(points: Sequence[Point], dx: float, dy: float) -> list[Point]:
    return [(x + dx, y + dy) for x, y in points]


def centroid(points: Sequence[Point]) -> Point:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def smooth(path: Sequence[Point], rounds: int = 2) -> list[Point]:
    """Chaikin corner cutting: hand-drawn looking curves from a few control points."""
    out = list(path)
    for _ in range(rounds):
        new = [out[0]]
        for (ax, ay), (bx, by) in itertools.pairwise(out):
            new += [(0.75 * ax + 0.25 * bx, 0.75 * ay + 0.25 * by),
                    (0.25 * ax + 0.75 * bx, 0.25 * ay + 0.75 * by)]
        out = [*new, out[-1]]
    return out


def arc(points: Sequence[Point], start: int, count: int) -> list[Point]:
    """`count` consecutive points of a closed outline, wrapping around."""
    return [points[(start + k) % len(points)] for k in range(count)]


def _extend(path: Sequence[Point], at_start: float, at_end: float) -> list[Point]:
    def beyond(end: Point, before: Point, length: float) -> Point:
        d = distance(end, before) or 1.0
        return (end[0] + (end[0] - before[0]) * length / d,
                end[1] + (end[1] - before[1]) * length / d)
    out = list(path)
    if at_start:
        out.insert(0, beyond(path[0], path[1], at_start))
    if at_end:
        out.append(beyond(path[-1], path[-2], at_end))
    return out


def crescent(points: Sequence[Point], lw: float, cap: float) -> list[Point] | None:
    """The highlight: a thin tapered crescent just inside the upper-left edge of a shape."""
    center = centroid(points)
    r_min = min(distance(p, center) for p in points)
    thick = min(0.2 * r_min, cap)
    if thick < 0.9 * lw:
        return None  # too small to carry a highlight
    inset = 1.1 * lw + 0.1 * r_min
    ns = normals(points)
    peak = max(range(len(points)), key=lambda i: ns[i][0] * LIGHT[0] + ns[i][1] * LIGHT[1])
    indices = _arc_indices(points, peak, 0.11 * _perimeter(points))
    outer, inner = [], []
    for k, i in enumerate(indices):
        taper = math.sin(math.pi * (k + 0.5) / len(indices)) ** 0.8
        (x, y), (nx, ny) = points[i], ns[i]
        outer.append((x - nx * inset, y - ny * inset))
        inner.append((x - nx * (inset + thick * taper), y - ny * (inset + thick * taper)))
    return outer + inner[::-1]


def _perimeter(points: Sequence[Point]) -> float:
    return sum(distance(a, b) for a, b in zip(points, [*points[1:], points[0]], strict=True))


def _arc_indices(points: Sequence[Point], peak: int, half_length: float) -> list[int]:
    n = len(points)
    sides = []
    for step in (-1, 1):
        run, i, walked = [], peak, 0.0
        while walked < half_length and len(run) < n // 2:
            j = (i + step) % n
            walked += distance(points[i], points[j])
            run.append(j)
            i = j
        sides.append(run)
    return [*sides[0][::-1], peak, *sides[1]]


# --- canvas and drawing primitives -------------------------------------------------------------

@dataclass
class Canvas:
    image: Image.Image
    draw: ImageDraw.ImageDraw
    lw: float  # outline width in supersampled pixels
    unit: float  # short side in supersampled pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def new_canvas(size: tuple[int, int], background: Color | None) -> Canvas:
    """background None = transparent (an isolated icon for the web)."""
    big = (size[0] * SS, size[1] * SS)
    if background is None:
        image = Image.new("RGBA", big, (*OUTLINE, 0))
    else:
        image = Image.new("RGB", big, background)
    unit = min(big)
    return Canvas(image, ImageDraw.Draw(image), unit / LINE_DIVISOR, unit)


def finish(canvas: Canvas, size: tuple[int, int]) -> Image.Image:
    # BOX over RGBA is premultiplied in Pillow, so transparent edges do not darken.
    return canvas.image.resize(size, Image.Resampling.BOX)


def shape(c: Canvas, points: Sequence[Point], fill: Color, highlight: Color | None = None) -> None:
    """A flat-filled shape with a centred outline and an optional upper-left highlight.

    The outline is a filled ring (two offset polygons), not a wide line: Pillow's wide-line
    joints leave seams on finely sampled curves.
    """
    c.draw.polygon(offset(points, c.lw / 2), fill=OUTLINE)
    c.draw.polygon(offset(points, -c.lw / 2), fill=fill)
    glint = crescent(points, c.lw, 0.035 * c.unit) if highlight else None
    if glint:
        c.draw.polygon(glint, fill=highlight)


def dot(c: Canvas, x: float, y: float, r: float, fill: Color) -> None:
    c.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def circle(c: Canvas, x: float, y: float, r: float, fill: Color,
           highlight: Color | None = None) -> None:
    shape(c, place(ellipse_points(r, r, count=48), x, y), fill, highlight)


def tube_polygon(path: Sequence[Point], radius: float, caps: tuple[bool, bool]) -> list[Point]:
    """Outline of a stroke of half-width `radius` along `path`, with round or butt ends."""
    ns = normals(path, closed=False)
    left = [(x + nx * radius, y + ny * radius) for (x, y), (nx, ny) in zip(path, ns, strict=True)]
    right = [(x - nx * radius, y - ny * radius) for (x, y), (nx, ny) in zip(path, ns, strict=True)]

    def cap(center: Point, normal: Point) -> list[Point]:  # half circle from +normal to -normal
        start = math.atan2(normal[1], normal[0])
        return [(center[0] + radius * math.cos(start + math.pi * k / 12),
                 center[1] + radius * math.sin(start + math.pi * k / 12)) for k in range(1, 12)]
    end = cap(path[-1], ns[-1]) if caps[1] else []
    start = cap(path[0], (-ns[0][0], -ns[0][1])) if caps[0] else []
    return left + end + right[::-1] + start


def tubes(c: Canvas, paths: Sequence[Sequence[Point]], width: float, fill: Color, *,
          open_ends: tuple[bool, bool] = (False, False), end_radius: float | None = None,
          highlight: Color | None = None) -> None:
    """Outlined tubes. All outlines go down first so crossing tubes merge into one network.

    An open end has no outline and its fill runs over whatever outline it meets: that is how a
    crista joins the inner membrane and a nuclear pore opens through the envelope. end_radius
    dilates the closed ends into bulbs (the rims of Golgi cisternae).
    """
    caps = (not open_ends[0], not open_ends[1])
    ext = 0.55 * c.lw
    for path in paths:
        _tube(c, path, width / 2 + c.lw, OUTLINE, caps, end_radius and end_radius + c.lw)
    for path in paths:
        body = _extend(path, 0 if caps[0] else ext, 0 if caps[1] else ext)
        _tube(c, body, width / 2, fill, caps, end_radius)
        if highlight:
            _tube_highlight(c, path, width, highlight)


def _tube(c: Canvas, path: Sequence[Point], radius: float, color: Color,
          caps: tuple[bool, bool], bulb: float | None) -> None:
    c.draw.polygon(tube_polygon(path, radius, caps), fill=color)
    for (x, y), closed in zip((path[0], path[-1]), caps, strict=True):
        if bulb and closed:
            dot(c, x, y, bulb, color)


def _tube_highlight(c: Canvas, path: Sequence[Point], width: float, color: Color) -> None:
    """A thin light streak on the lit side of a tube, near its upper-left end."""
    if len(path) < 6 or 0.2 * width < 1.5 * SS:
        return
    ns = normals(path, closed=False)
    sign = 1 if sum(nx * LIGHT[0] + ny * LIGHT[1] for nx, ny in ns) > 0 else -1
    n, shift = len(path), sign * 0.22 * width
    lit = max(range(n), key=lambda i: path[i][0] * LIGHT[0] + path[i][1] * LIGHT[1])
    first = min(max(lit - int(0.19 * n), int(0.1 * n)), int(0.52 * n))  # stay off the ends
    streak = [(path[i][0] + ns[i][0] * shift, path[i][1] + ns[i][1] * shift)
              for i in range(first, first + int(0.38 * n))]
    if len(streak) > 2:
        c.draw.polygon(tube_polygon(streak, 0.1 * width, (True, True)), fill=color)


# --- organelles ---------------------------------------------------------------------------------

def draw_cell_body(c: Canvas, cx: float, cy: float, rx: float, ry: float,
                   rng: random.Random) -> list[Point]:
    """Plasma membrane as an even amber band between two outlines; returns its inner edge."""
    outer = place(ellipse_points(rx, ry, 2.0, wobble_terms(rng, 0.05), count=360), cx, cy)
    inner = offset(outer, -max(1.8 * c.lw, 0.014 * c.unit))
    shape(c, outer, MEMBRANE)
    shape(c, inner, CYTOPLASM, CYTOPLASM_HI)
    return inner


@dataclass(frozen=True)
class Nucleus:
    cx: float
    cy: float
    rx: float
    ry: float
    outline: list[Point]


def make_nucleus(cx: float, cy: float, rx: float, ry: float, rng: random.Random) -> Nucleus:
    """The outline comes first: the ER around it and the layout depend on it."""
    points = ellipse_points(rx, ry, 2.0, wobble_terms(rng, 0.04), count=240)
    return Nucleus(cx, cy, rx, ry, place(points, cx, cy, rng.uniform(-0.3, 0.3)))


def draw_nucleus(c: Canvas, nuc: Nucleus, rng: random.Random, pores: int,
                 nucleoli: int = 1) -> None:
    """Double envelope with pores, chromatin and a dark nucleolus."""
    band = max(1.8 * c.lw, 0.05 * min(nuc.rx, nuc.ry))
    inner = offset(nuc.outline, -band)
    shape(c, nuc.outline, ENVELOPE)
    shape(c, inner, NUCLEOPLASM, NUCLEOPLASM_HI)
    _draw_chromatin(c, nuc, rng)
    for k in range(nucleoli):
        _draw_nucleolus(c, nuc, rng, 0.3 if nucleoli == 1 else 0.2, k)
    _draw_pores(c, nuc.outline, inner, band, pores, rng)


def _draw_chromatin(c: Canvas, nuc: Nucleus, rng: random.Random) -> None:
    """Heterochromatin as flat darker patches: texture, so no outline."""
    for _ in range(8):
        angle, r = rng.uniform(0, 2 * math.pi), 0.7 * math.sqrt(rng.random())
        x, y = nuc.cx + r * nuc.rx * math.cos(angle), nuc.cy + r * nuc.ry * math.sin(angle)
        size = rng.uniform(0.045, 0.08) * min(nuc.rx, nuc.ry)
        pts = ellipse_points(size * rng.uniform(1.2, 2.0), size, 2.0, wobble_terms(rng, 0.2), 40)
        c.draw.polygon(place(pts, x, y, rng.uniform(0, math.pi)), fill=CHROMATIN)


def _draw_nucleolus(c: Canvas, nuc: Nucleus, rng: random.Random, size: float, k: int) -> None:
    angle = rng.uniform(0, 2 * math.pi) + k * math.pi
    x, y = nuc.cx + 0.28 * nuc.rx * math.cos(angle), nuc.cy + 0.28 * nuc.ry * math.sin(angle)
    r = size * min(nuc.rx, nuc.ry)
    pts = ellipse_points(r * rng.uniform(1.0, 1.2), r, 2.0, wobble_terms(rng, 0.08), count=90)
    shape(c, place(pts, x, y, rng.uniform(0, math.pi)), NUCLEOLUS, NUCLEOLUS_HI)


def _draw_pores(c: Canvas, outer: list[Point], inner: list[Point], band: float, count: int,
                rng: random.Random) -> None:
    """A pore is an open tube through the envelope: both membranes join around it."""
    n = len(outer)
    start = rng.randrange(n)
    for k in range(count):
        i = (start + round((k + rng.uniform(-0.2, 0.2)) * n / count)) % n
        tubes(c, [[outer[i], inner[i]]], max(c.lw, 0.9 * band), NUCLEOPLASM,
              open_ends=(True, True))


@dataclass(frozen=True)
class Mito:
    x: float
    y: float
    length: float
    width: float
    angle: float  # radians
    bend: float = 0.0  # end deflection as a fraction of the half-length
    view: str = "section"  # section | transverse | cutaway | exterior
    cut: float = 0.0  # cut-away edge, as a fraction of the half-length

    @property
    def exponent(self) -> float:
        return 2.0 if self.view == "transverse" else 2.6

    def local_outline(self) -> list[Point]:
        return ellipse_points(self.length / 2, self.width / 2, self.exponent, count=240)

    def to_canvas(self, points: Sequence[Point]) -> list[Point]:
        return place(points, self.x, self.y, self.angle, self.bend / (self.length / 2))


def draw_mitochondrion(c: Canvas, m: Mito, rng: random.Random) -> None:
    """Outer membrane, inner membrane with cristae folding into the matrix."""
    outer = m.to_canvas(m.local_outline())
    if m.view == "exterior":
        shape(c, outer, MITO_MEMBRANE, MITO_OUTER_HI)
        return
    inner = offset(outer, -max(1.7 * c.lw, 0.07 * m.width))
    shape(c, outer, MITO_MEMBRANE)
    shape(c, inner, MITO_MATRIX, MITO_MATRIX_HI)
    width = max(c.lw, 0.075 * m.width)
    bases = _transverse_cristae(inner, rng) if m.view == "transverse" else \
        _lamellar_cristae(m, inner, width + 2 * c.lw, rng)
    for base, direction, depth in bases:
        path = _crista_path(base, direction, depth, rng)
        tubes(c, [path], width, MITO_MEMBRANE, open_ends=(True, False))
    if m.view == "cutaway":
        _draw_cutaway_cover(c, m)


def _unit(a: Point, b: Point) -> Point:
    d = distance(a, b) or 1.0
    return (b[0] - a[0]) / d, (b[1] - a[1]) / d


def _lamellar_cristae(m: Mito, inner: list[Point], crista_width: float,
                      rng: random.Random) -> list[Crista]:
    """Parallel cristae alternating between the two long sides, evenly spaced along the length."""
    n = len(inner)
    count = max(3, min(9, int(0.68 * m.length / (2.0 * crista_width))))
    out = []
    for k in range(count):
        u = -0.68 + 1.36 * (k + 0.5) / count + rng.uniform(-0.03, 0.03)
        t = math.acos(math.copysign(abs(u) ** (m.exponent / 2), u))  # invert the superellipse
        i = round(t / (2 * math.pi) * n) % n
        i = (n - i) % n if k % 2 else i
        mirror = inner[(n - i) % n]  # same position along the axis, other side
        depth = rng.uniform(0.5, 0.66) * distance(inner[i], mirror)
        out.append((inner[i], _unit(inner[i], mirror), depth))
    return out


def _transverse_cristae(inner: list[Point], rng: random.Random) -> list[Crista]:
    """In a transverse section the cristae point from the whole rim towards the centre."""
    n, center = len(inner), centroid(inner)
    count = rng.randint(7, 9)
    start = rng.randrange(n)
    out = []
    for k in range(count):
        i = (start + round((k + rng.uniform(-0.15, 0.15)) * n / count)) % n
        depth = rng.uniform(0.45, 0.65) * distance(inner[i], center)
        out.append((inner[i], _unit(inner[i], center), depth))
    return out


def _crista_path(base: Point, direction: Point, depth: float,
                 rng: random.Random) -> list[Point]:
    dx, dy = direction
    waves, amp = rng.choice((1.0, 1.5, 2.0)), 0.09 * depth * rng.choice((-1, 1))
    path = []
    for k in range(17):
        s = k / 16
        w = amp * math.sin(math.pi * waves * s)
        path.append((base[0] + dx * depth * s - dy * w, base[1] + dy * depth * s + dx * w))
    return path


def _draw_cutaway_cover(c: Canvas, m: Mito) -> None:
    """The intact outer membrane over one end; the rest is cut open to show the inside."""
    local = m.local_outline()
    cut = m.cut * m.length / 2
    kept = [p for p in local if p[0] <= cut]  # contiguous: the outline starts at +x
    top, bottom = kept[-1], kept[0]
    bulge = 0.18 * m.width
    rim = [(cut + bulge * math.sin(math.pi * s / 12), top[1] + (bottom[1] - top[1]) * s / 12)
           for s in range(13)]
    shape(c, m.to_canvas(kept + rim), MITO_MEMBRANE, MITO_OUTER_HI)


def draw_golgi(c: Canvas, cx: float, cy: float, size: float, angle: float, cisternae: int,
               rng: random.Random, vesicles: int = 6) -> None:
    """Curved stacked cisternae with dilated rims; vesicles bud off the ends and the convex face.

    In local coordinates the stack bows upwards: the concave (cis) face looks down (+y).
    """
    w = 0.075 * size
    pitch = w + 2 * c.lw + 0.035 * size
    r0 = 0.7 * size
    centre_y = r0 + (cisternae - 1) * pitch / 2
    paths = []
    for k in range(cisternae):
        radius = r0 + k * pitch
        half = 0.5 * size * (1 - 0.35 * ((k - (cisternae - 1) / 2) / cisternae) ** 2 * 4)
        half *= rng.uniform(0.88, 1.0)
        span = half / radius
        local = [(radius * math.sin(a), centre_y - radius * math.cos(a))
                 for a in (span * (2 * s / 30 - 1) for s in range(31))]
        paths.append(place(local, cx, cy, angle))
    tubes(c, paths, w, GOLGI, end_radius=0.68 * w, highlight=GOLGI_HI)
    top = -(cisternae - 1) * pitch / 2 - 0.68 * w  # local y of the convex face
    for x, y, r in _golgi_vesicles(paths, w, (cx, cy, angle), top, size, vesicles, rng):
        circle(c, x, y, r, GOLGI, GOLGI_HI)


def _golgi_vesicles(paths: list[list[Point]], w: float, frame: tuple[float, float, float],
                    top: float, size: float, count: int, rng: random.Random) -> list[Circle]:
    """About half bud off rims (alternate cisternae, so they never collide), the rest float
    above the convex trans face in distinct slots."""
    ends = [(p[-1], p[-4]) for p in paths[::2]] + [(p[0], p[3]) for p in paths[1::2]]
    out = []
    for end, before in rng.sample(ends, min(len(ends), (count + 1) // 2)):
        r = w * rng.uniform(0.55, 0.8)
        gap = (0.83 * w + r) / (distance(end, before) or 1.0)
        out.append((end[0] + (end[0] - before[0]) * gap, end[1] + (end[1] - before[1]) * gap, r))
    for slot in sorted(rng.sample(range(5), min(5, count - len(out)))):
        r = w * rng.uniform(0.55, 0.8)
        x = (slot - 2 + rng.uniform(-0.15, 0.15)) * 0.2 * size
        (px, py), = place([(x, top - r - rng.uniform(0.04, 0.12) * size)], *frame)
        out.append((px, py, r))
    return out


def ribosome_radius(c: Canvas, width: float) -> float:
    return max(0.9 * c.lw, 0.2 * width)


def draw_rough_er(c: Canvas, paths: Sequence[Sequence[Point]], width: float,
                  rng: random.Random) -> None:
    """Flattened cisternae studded with ribosomes on their cytoplasmic faces."""
    tubes(c, paths, width, ER, highlight=ER_HI)
    r = ribosome_radius(c, width)
    for path in paths:
        _ribosomes_along(c, path, width / 2 + 0.5 * c.lw + 0.75 * r, r, rng)


def _ribosomes_along(c: Canvas, path: Sequence[Point], away: float, r: float,
                     rng: random.Random) -> None:
    ns = normals(path, closed=False)
    walked, next_at = 0.0, r * 2
    for i in range(1, len(path) - 1):
        walked += distance(path[i - 1], path[i])
        if walked < next_at or distance(path[i], path[-1]) < 2 * r:
            continue
        next_at = walked + 2.8 * r * rng.uniform(0.9, 1.4)
        for side in (1, -1):
            if rng.random() < 0.85:
                dot(c, path[i][0] + side * ns[i][0] * away, path[i][1] + side * ns[i][1] * away,
                    r, RIBOSOME)


def er_sheets(cx: float, cy: float, length: float, count: int, pitch: float, angle: float,
              rng: random.Random) -> list[list[Point]]:
    """Parallel wavy sheets, the typical rough ER stack."""
    phase, wavelength = rng.uniform(0, 2 * math.pi), length * rng.uniform(0.45, 0.7)
    amp = pitch * rng.uniform(0.15, 0.35)
    paths = []
    for k in range(count):
        y0 = (k - (count - 1) / 2) * pitch
        half = 0.5 * length * rng.uniform(0.8, 1.0)
        shift = rng.uniform(-0.08, 0.08) * length
        local = [(x, y0 + amp * math.sin(2 * math.pi * x / wavelength + phase))
                 for x in (shift - half + 2 * half * s / 60 for s in range(61))]
        paths.append(place(local, cx, cy, angle))
    return paths


def perinuclear_er(c: Canvas, nuc: Nucleus, width: float, sheets: int,
                   rng: random.Random) -> list[list[Point]]:
    """Rough ER sheets following the nuclear envelope over part of its circumference."""
    r = ribosome_radius(c, width)
    first = width / 2 + 2 * c.lw + 2.2 * r
    pitch = width + 2 * c.lw + 4.4 * r
    n = len(nuc.outline)
    start, span = rng.randrange(n), int(n * rng.uniform(0.3, 0.42))
    paths = []
    for k in range(sheets):
        ring = offset(nuc.outline, first + k * pitch)
        trim = int(n * 0.03 * k * rng.uniform(0.5, 1.5))
        paths.append(smooth(arc(ring, start + trim, span - trim), 1))
    return paths


def draw_smooth_er(c: Canvas, area: tuple[float, float, float, float], width: float,
                   junctions: int, rng: random.Random) -> None:
    """An anastomosing network of tubules with no ribosomes; area is (cx, cy, rx, ry)."""
    paths = smooth_er_paths(area, junctions, rng)
    tubes(c, paths, width, ER)
    for path in paths:  # highlights only on the upper-left part of the network
        (x, y), (cx, cy) = path[len(path) // 2], area[:2]
        if (x - cx) + (y - cy) < 0:
            _tube_highlight(c, path, width, ER_HI)


def smooth_er_paths(area: tuple[float, float, float, float], junctions: int,
                    rng: random.Random) -> list[list[Point]]:
    """Junctions joined to near neighbours by gently curved tubules that do not cross."""
    cx, cy, rx, ry = area
    points = spread_points(area, junctions, 0.5 * min(rx, ry), rng)
    candidates = set()
    for i, p in enumerate(points):
        nearest = sorted(range(len(points)), key=lambda j: distance(p, points[j]))[1:4]
        candidates.update((min(i, j), max(i, j)) for j in nearest
                          if distance(p, points[j]) < 1.1 * min(rx, ry))
    edges: list[tuple[int, int]] = []
    for i, j in sorted(candidates, key=lambda e: (distance(points[e[0]], points[e[1]]), e)):
        if not any(_crossing(points[i], points[j], points[k], points[m])
                   for k, m in edges if len({i, j, k, m}) == 4):
            edges.append((i, j))
    paths = [_curved(points[i], points[j], rng) for i, j in edges]
    for _ in range(3):  # a few blind-ending tubules pointing outwards
        x, y = points[rng.randrange(len(points))]
        a = math.atan2(y - cy, x - cx) + rng.uniform(-0.5, 0.5)
        reach = 0.25 * min(rx, ry)
        paths.append(_curved((x, y), (x + reach * math.cos(a), y + reach * math.sin(a)), rng))
    return paths


def _crossing(a: Point, b: Point, c: Point, d: Point) -> bool:
    def side(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def spread_points(area: tuple[float, float, float, float], count: int, spacing: float,
                  rng: random.Random) -> list[Point]:
    """Random points in an ellipse, no two closer than `spacing`."""
    cx, cy, rx, ry = area
    points: list[Point] = []
    for _ in range(count * 60):
        if len(points) == count:
            break
        a, r = rng.uniform(0, 2 * math.pi), math.sqrt(rng.random())
        p = (cx + r * rx * math.cos(a), cy + r * ry * math.sin(a))
        if all(distance(p, q) >= spacing for q in points):
            points.append(p)
    return points


def _curved(a: Point, b: Point, rng: random.Random) -> list[Point]:
    bow = rng.uniform(-0.3, 0.3)
    mid = ((a[0] + b[0]) / 2 - (b[1] - a[1]) * bow, (a[1] + b[1]) / 2 + (b[0] - a[0]) * bow)
    return smooth([a, mid, b], 3)


# --- placing organelles inside a cell ------------------------------------------------------------

@dataclass
class Layout:
    """Rejection sampling of non-overlapping circles inside an ellipse."""
    cx: float
    cy: float
    rx: float
    ry: float
    taken: list[Circle] = field(default_factory=list)

    def sample(self, rng: random.Random) -> Point:
        angle, r = rng.uniform(0, 2 * math.pi), math.sqrt(rng.random())
        return self.cx + r * self.rx * math.cos(angle), self.cy + r * self.ry * math.sin(angle)

    def claim(self, circles: Sequence[Circle]) -> bool:
        for x, y, r in circles:
            if r >= min(self.rx, self.ry):
                return False
            if ((x - self.cx) / (self.rx - r)) ** 2 + ((y - self.cy) / (self.ry - r)) ** 2 > 1:
                return False
            if any(math.hypot(x - tx, y - ty) < r + tr for tx, ty, tr in self.taken):
                return False
        self.taken.extend(circles)
        return True


def mito_circles(m: Mito) -> list[Circle]:
    r = 0.6 * m.width
    ux, uy = math.cos(m.angle), math.sin(m.angle)
    return [(m.x + ux * f * m.length, m.y + uy * f * m.length, r) for f in (-0.3, 0.0, 0.3)]


def place_mitos(layout: Layout, rng: random.Random, count: int, length: tuple[float, float],
                ratio: tuple[float, float], views: Sequence[str] = ("section",)) -> list[Mito]:
    mitos = []
    for k in range(count):
        view = views[k % len(views)]
        for _ in range(400):
            x, y = layout.sample(rng)
            size = rng.uniform(*length)
            m = Mito(x, y, size, size / rng.uniform(*ratio), rng.uniform(0, math.pi),
                     rng.uniform(-0.15, 0.15), view)
            if view == "transverse":
                m = Mito(x, y, 0.5 * size, 0.5 * size / rng.uniform(1.0, 1.3), m.angle, 0, view)
            if layout.claim(mito_circles(m)):
                mitos.append(m)
                break
    return mitos


def place_circle(layout: Layout, rng: random.Random, radius: float) -> Point | None:
    for _ in range(400):
        x, y = layout.sample(rng)
        if layout.claim([(x, y, radius)]):
            return x, y
    return None


# --- scenes: each draws one image and returns its caption ---------------------------------------

def count_word(n: int) -> str:
    return NUMBERS[n] if n < len(NUMBERS) else str(n)


def join_parts(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def scene_whole_cell(c: Canvas, rng: random.Random, mitos: int, smooth_er: bool,
                     vesicles: int) -> str:
    w, h = c.size
    cx, cy, rx, ry = w / 2, h / 2, 0.44 * w, 0.44 * h
    draw_cell_body(c, cx, cy, rx, ry, rng)
    s = min(rx, ry)
    layout = Layout(cx, cy, rx - 0.1 * s, ry - 0.1 * s)
    nuc = make_nucleus(cx + rng.uniform(-0.12, 0.12) * rx, cy + rng.uniform(-0.1, 0.1) * ry,
                       0.29 * s, 0.24 * s, rng)
    er_width = 0.045 * s
    rough = perinuclear_er(c, nuc, er_width, 3, rng)
    layout.taken += _footprint(nuc, rough, er_width / 2 + c.lw + 2 * ribosome_radius(c, er_width))
    golgi = place_circle(layout, rng, 0.24 * s)
    er_spot = place_circle(layout, rng, 0.2 * s) if smooth_er else None
    placed = place_mitos(layout, rng, mitos, (0.3 * s, 0.38 * s), (1.9, 2.5))
    spots = [p for p in (place_circle(layout, rng, 0.05 * s) for _ in range(vesicles)) if p]
    _free_ribosomes(c, Layout(cx, cy, rx - 0.08 * s, ry - 0.08 * s), rng, 70, 0.012 * s)
    if er_spot:
        draw_smooth_er(c, (*er_spot, 0.17 * s, 0.17 * s), 0.026 * s, 5, rng)
    draw_rough_er(c, rough, er_width, rng)
    draw_nucleus(c, nuc, rng, pores=10)
    if golgi:
        toward_nucleus = math.atan2(-(nuc.cx - golgi[0]), nuc.cy - golgi[1])
        draw_golgi(c, *golgi, 0.36 * s, toward_nucleus, 5, rng, 5)
    for m in placed:
        draw_mitochondrion(c, m, rng)
    for x, y in spots:
        circle(c, x, y, 0.035 * s, GOLGI, GOLGI_HI)
    return _whole_cell_caption(nuc.cx - cx, ry, golgi is not None, len(placed),
                               er_spot is not None, len(spots))


def _footprint(nuc: Nucleus, rough: list[list[Point]], reach: float) -> list[Circle]:
    """Circles covering the nucleus and the ER sheets around it, for the layout."""
    radius = max(distance(p, (nuc.cx, nuc.cy)) for p in nuc.outline)
    return [(nuc.cx, nuc.cy, radius)] + [(x, y, reach) for path in rough for x, y in path[::3]]


def _whole_cell_caption(dx: float, ry: float, golgi: bool, mitos: int, smooth_er: bool,
                        vesicles: int) -> str:
    where = "central" if abs(dx) < 0.06 * ry else "slightly off-centre"
    parts = [f"a {where} nucleus with nucleolus and nuclear pores",
             "rough endoplasmic reticulum around the nucleus"]
    if golgi:
        parts.append("a Golgi apparatus")
    if mitos:
        parts.append(f"{count_word(mitos)} mitochondri{'on' if mitos == 1 else 'a'}")
    if smooth_er:
        parts.append("smooth endoplasmic reticulum")
    if vesicles:
        parts.append(f"{count_word(vesicles)} transport vesicles")
    parts.append("free ribosomes")
    return "whole eukaryotic cell with plasma membrane, cytoplasm, " + join_parts(parts)


def _free_ribosomes(c: Canvas, layout: Layout, rng: random.Random, count: int, r: float) -> None:
    for _ in range(count):
        dot(c, *layout.sample(rng), r, RIBOSOME)


def scene_nucleus(c: Canvas, rng: random.Random, er_sheets: int, nucleoli: int,
                  isolated: bool = False) -> str:
    w, h = c.size
    s = min(w, h)
    rn = (0.36 if isolated else 0.3 - 0.025 * er_sheets) * s
    nuc = make_nucleus(w / 2, h / 2, rn * (w / s) ** 0.3 * rng.uniform(1.0, 1.1),
                       rn * (h / s) ** 0.3, rng)
    width = 0.035 * s
    rough = perinuclear_er(c, nuc, width, er_sheets, rng)
    nuc, rough = _centred(c, nuc, rough, width / 2 + c.lw + 2 * ribosome_radius(c, width))
    draw_rough_er(c, rough, width, rng)
    draw_nucleus(c, nuc, rng, pores=rng.randint(12, 15), nucleoli=nucleoli)
    nucleolus = "a dense nucleolus" if nucleoli == 1 else f"{count_word(nucleoli)} nucleoli"
    text = (f"cell nucleus with a double nuclear envelope perforated by nuclear pores, "
            f"chromatin and {nucleolus}")
    if isolated:
        return "isolated " + text
    if er_sheets:
        text += (f", flanked by {count_word(er_sheets)} sheets of rough endoplasmic reticulum "
                 "studded with ribosomes")
    return "close-up of a " + text


def _centred(c: Canvas, nuc: Nucleus, rough: list[list[Point]], reach: float
             ) -> tuple[Nucleus, list[list[Point]]]:
    """Shift the nucleus and its ER so that together they sit in the middle of the canvas."""
    xs = [x for x, _ in nuc.outline] + [x + sign * reach for path in rough for x, _ in path
                                        for sign in (-1, 1)]
    ys = [y for _, y in nuc.outline] + [y + sign * reach for path in rough for _, y in path
                                        for sign in (-1, 1)]
    dx, dy = c.size[0] / 2 - (min(xs) + max(xs)) / 2, c.size[1] / 2 - (min(ys) + max(ys)) / 2
    shifted = Nucleus(nuc.cx + dx, nuc.cy + dy, nuc.rx, nuc.ry, translate(nuc.outline, dx, dy))
    return shifted, [translate(path, dx, dy) for path in rough]


def scene_golgi(c: Canvas, rng: random.Random, cisternae: int, angle: float,
                isolated: bool = False) -> str:
    w, h = c.size
    a = math.radians(angle)
    size = fit_length(w, h, 1.3, a, 0.75 if isolated else 0.88) / 1.36  # rims and buds add 36%
    draw_golgi(c, w / 2, h / 2 + 0.06 * size, size, a, cisternae, rng, vesicles=8)
    text = (f"Golgi apparatus of {count_word(cisternae)} stacked curved cisternae with dilated "
            "rims, transport vesicles budding from the rims and released from the trans face")
    return ("isolated " if isolated else "") + text


def scene_rough_er(c: Canvas, rng: random.Random, sheets: int, angle: float,
                   isolated: bool = False) -> str:
    w, h = c.size
    s = min(w, h)
    width = 0.05 * s
    length = fit_length(w, h, 2.5, math.radians(angle), 0.85)
    pitch = width + 2 * c.lw + 0.085 * s
    paths = er_sheets(w / 2, h / 2, length, sheets, pitch, math.radians(angle), rng)
    draw_rough_er(c, paths, width, rng)
    if isolated:
        return (f"isolated segment of rough endoplasmic reticulum, {count_word(sheets)} "
                "flattened cisternae with ribosomes bound to their cytoplasmic surfaces")
    return (f"stack of {count_word(sheets)} parallel flattened cisternae of rough endoplasmic "
            "reticulum with ribosomes bound along their cytoplasmic surfaces")


def scene_smooth_er(c: Canvas, rng: random.Random, junctions: int) -> str:
    w, h = c.size
    s = min(w, h)
    draw_smooth_er(c, (w / 2, h / 2, 0.38 * w, 0.38 * h), 0.04 * s, junctions, rng)
    return ("network of branching and interconnected tubules of smooth endoplasmic reticulum "
            "without ribosomes")


def scene_bilayer(c: Canvas, rng: random.Random, proteins: Sequence[tuple[str, float]]) -> str:
    w, h = c.size
    r = c.unit / 38
    half = 4.1 * r  # head centre to mid-plane
    amp, phase = h * rng.uniform(0.05, 0.08), rng.uniform(0, 2 * math.pi)
    mid = [(x, 0.42 * h + amp * math.sin(2 * math.pi * x / (1.3 * w) + phase))
           for x in (w * (-0.05 + 1.1 * k / 200) for k in range(201))]
    top, bottom = offset(mid, -half, closed=False), offset(mid, half, closed=False)
    if top[0][1] > bottom[0][1]:
        top, bottom = bottom, top
    c.draw.polygon([*bottom, (w + r, h + r), (-r, h + r)], fill=CYTOPLASM)
    c.draw.polygon([*top, *bottom[::-1]], fill=MEMBRANE_CORE)
    blocked = [(frac * w, 3.6 * r if kind == "integral" else 5.2 * r) for kind, frac in proteins]
    for leaflet in (top, bottom):
        _draw_leaflet(c, leaflet, mid, r, blocked, rng)
    for kind, frac in proteins:
        _draw_membrane_protein(c, mid, frac, half, r, kind, rng)
    return _bilayer_caption(proteins)


def _draw_leaflet(c: Canvas, heads: list[Point], mid: list[Point], r: float,
                  blocked: Sequence[tuple[float, float]], rng: random.Random) -> None:
    """Phospholipids: an amber head with two fatty-acid tails pointing to the mid-plane."""
    walked, next_at = 0.0, 0.0
    for i in range(1, len(heads)):
        walked += distance(heads[i - 1], heads[i])
        if walked < next_at:
            continue
        next_at = walked + 2.25 * r
        (hx, hy), (mx, my) = heads[i], mid[i]
        if any(abs(hx - x) < reach for x, reach in blocked):
            continue
        length = distance(heads[i], mid[i]) or 1.0
        dx, dy = (mx - hx) / length, (my - hy) / length
        for side in (-0.42, 0.42):
            kink = rng.random() < 0.25
            sx, sy = hx - dy * side * r, hy + dx * side * r
            tip = 0.8 * length
            bend = 0.35 * r if kink else 0.0
            tail = [(sx, sy), (sx + dx * tip / 2 - dy * bend, sy + dy * tip / 2 + dx * bend),
                    (sx + dx * tip, sy + dy * tip)]
            c.draw.line(tail, fill=OUTLINE, width=round(c.lw), joint="curve")
        circle(c, hx, hy, r, MEMBRANE)


def _draw_membrane_protein(c: Canvas, mid: list[Point], frac: float, half: float, r: float,
                           kind: str, rng: random.Random) -> None:
    i = round(frac * (len(mid) - 1))
    ns = normals(mid, closed=False)
    angle = math.atan2(ns[i][1], ns[i][0])
    x, y = mid[i]
    if kind == "integral":
        pts = ellipse_points(half + 1.9 * r, 2.9 * r, 2.3, wobble_terms(rng, 0.05), count=120)
        shape(c, place(pts, x, y, angle), PROTEIN, PROTEIN_HI)
        return
    for side in (-1, 1):  # a channel: two subunits around a water-filled pore
        cx, cy = x - ns[i][1] * side * 2.6 * r, y + ns[i][0] * side * 2.6 * r
        pts = ellipse_points(half + 2.1 * r, 1.9 * r, 2.4, wobble_terms(rng, 0.04), count=120)
        shape(c, place(pts, cx, cy, angle), PROTEIN, PROTEIN_HI)


def _bilayer_caption(proteins: Sequence[tuple[str, float]]) -> str:
    integral = sum(kind == "integral" for kind, _ in proteins)
    channels = len(proteins) - integral
    parts = []
    if integral:
        parts.append(f"{count_word(integral)} integral membrane protein"
                     + ("s" if integral > 1 else "") + " spanning the bilayer")
    if channels:
        parts.append("a channel protein with a central pore")
    return ("close-up of the plasma membrane phospholipid bilayer, extracellular space above "
            "and cytoplasm below, hydrophilic heads facing outward and hydrophobic tails "
            "inward, with " + join_parts(parts))


def fit_length(w: float, h: float, ratio: float, angle: float, fill: float) -> float:
    """Longest mitochondrion of this aspect ratio and rotation that fits the canvas."""
    ca, sa = abs(math.cos(angle)), abs(math.sin(angle))
    return fill * min(w / (ca + sa / ratio), h / (sa + ca / ratio))


def scene_mito(c: Canvas, rng: random.Random, view: str, ratio: float, angle: float,
               bend: float = 0.0, scale: float = 1.0, isolated: bool = False) -> str:
    w, h = c.size
    a = math.radians(angle)
    length = fit_length(w, h, ratio, a, 0.8 * scale) * (1 - 0.5 * abs(bend))
    m = Mito(w / 2, h / 2 - bend * 0.25 * length, length, length / ratio, a, bend, view,
             cut=rng.uniform(-0.45, -0.3))
    draw_mitochondrion(c, m, rng)
    return ("isolated " if isolated else "") + _mito_caption(m, ratio)


def _orientation(angle: float) -> str:
    deg = math.degrees(angle) % 180
    if deg < 15 or deg > 165:
        return "lying horizontally"
    return "standing vertically" if 75 <= deg <= 105 else "lying diagonally"


def _mito_caption(m: Mito, ratio: float) -> str:
    shape_word = "elongated" if ratio >= 2.4 else ("short oval" if ratio < 1.9 else "oval")
    looks = ("curved " if abs(m.bend) >= 0.1 else "") + shape_word
    looks = ("an " if looks[0] in "aeiou" else "a ") + looks
    where = _orientation(m.angle)
    if m.view == "transverse":
        return ("transverse cross-section of a mitochondrion with cristae folding from the inner "
                "membrane into the matrix, outer membrane and intermembrane space visible")
    if m.view == "exterior":
        return f"external view of {looks} mitochondrion {where}, smooth outer membrane only"
    if m.view == "cutaway":
        return (f"cut-away view of {looks} mitochondrion {where}, the outer membrane cut away "
                "over most of its length to expose the cristae of the inner membrane and the "
                "matrix")
    return (f"longitudinal section of {looks} mitochondrion {where}, showing the outer membrane, "
            "the inner membrane folded into wavy cristae and the matrix")


def scene_mito_pair(c: Canvas, rng: random.Random, angle: float) -> str:
    w, h = c.size
    a = math.radians(angle)
    length = fit_length(w, h, 2.2, a, 0.62)
    width = length / 2.6
    px, py = -math.sin(a), math.cos(a)  # perpendicular: the two lie side by side
    for side in (-1, 1):
        shift = side * 0.12 * length
        m = Mito(w / 2 + px * side * 0.68 * width + math.cos(a) * shift,
                 h / 2 + py * side * 0.68 * width + math.sin(a) * shift,
                 length * rng.uniform(0.85, 1.0), width, a + rng.uniform(-0.08, 0.08),
                 rng.uniform(-0.12, 0.12))
        draw_mitochondrion(c, m, rng)
    return ("two mitochondria lying side by side in longitudinal section, each showing the "
            "outer membrane, cristae folding from the inner membrane and the matrix")


def scene_mito_cluster(c: Canvas, rng: random.Random, count: int, transverse: int) -> str:
    w, h = c.size
    s = min(w, h)
    layout = Layout(w / 2, h / 2, 0.5 * w - 0.04 * s, 0.5 * h - 0.04 * s)
    views = ["transverse"] * transverse + ["section"] * (count - transverse)
    mitos = place_mitos(layout, rng, count, (0.25 * s, 0.38 * s), (1.8, 2.6), views)
    for m in mitos:
        draw_mitochondrion(c, m, rng)
    cut = sum(m.view == "transverse" for m in mitos)
    text = (f"cluster of {count_word(len(mitos))} mitochondria of varying size and orientation, "
            "sectioned to show the outer membrane, cristae and matrix")
    if cut:
        text += f", {count_word(cut)} of them cut in transverse cross-section"
    return text


# --- the portfolio -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    folder: str
    name: str
    size: tuple[int, int]
    scene: Callable[[Canvas, random.Random], str]
    transparent: bool = False
    background: Color = WHITE

    @property
    def filename(self) -> str:
        return f"{self.name}.png"

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.filename}"


def _cells() -> list[Spec]:
    def cell(name: str, size: tuple[int, int], scene: Callable[..., str], **kw: object) -> Spec:
        transparent = bool(kw.get("isolated"))
        bg = PALE if name.endswith(("_02", "_05")) else WHITE
        return Spec("cells", name, size, partial(scene, **kw), transparent, bg)
    return [
        cell("whole_cell_01", (768, 768), scene_whole_cell, mitos=4, smooth_er=True, vesicles=4),
        cell("whole_cell_02", (896, 640), scene_whole_cell, mitos=5, smooth_er=True, vesicles=3),
        cell("whole_cell_03", (640, 896), scene_whole_cell, mitos=4, smooth_er=True, vesicles=4),
        cell("whole_cell_04", (768, 512), scene_whole_cell, mitos=4, smooth_er=True, vesicles=0),
        cell("whole_cell_05", (512, 512), scene_whole_cell, mitos=3, smooth_er=False, vesicles=2),
        cell("nucleus_closeup_01", (768, 768), scene_nucleus, er_sheets=3, nucleoli=1),
        cell("nucleus_closeup_02", (896, 640), scene_nucleus, er_sheets=2, nucleoli=2),
        cell("nucleus_closeup_03", (512, 512), scene_nucleus, er_sheets=0, nucleoli=1),
        cell("golgi_stack_01", (768, 512), scene_golgi, cisternae=5, angle=0),
        cell("golgi_stack_02", (512, 768), scene_golgi, cisternae=4, angle=-90),
        cell("golgi_stack_03", (768, 768), scene_golgi, cisternae=6, angle=25),
        cell("rough_er_01", (896, 640), scene_rough_er, sheets=4, angle=-8),
        cell("rough_er_02", (512, 512), scene_rough_er, sheets=3, angle=30),
        cell("smooth_er_01", (768, 768), scene_smooth_er, junctions=11),
        cell("smooth_er_02", (640, 896), scene_smooth_er, junctions=9),
        cell("membrane_bilayer_01", (896, 640), scene_bilayer,
             proteins=(("integral", 0.3), ("integral", 0.72))),
        cell("membrane_bilayer_02", (768, 512), scene_bilayer,
             proteins=(("channel", 0.35), ("integral", 0.78))),
        cell("nucleus_icon_01", (512, 512), scene_nucleus, er_sheets=0, nucleoli=1,
             isolated=True),
        cell("golgi_icon_01", (512, 512), scene_golgi, cisternae=5, angle=-10, isolated=True),
        cell("ribosome_er_icon_01", (512, 512), scene_rough_er, sheets=2, angle=-20,
             isolated=True),
    ]


def _mitochondria() -> list[Spec]:
    def mito(name: str, size: tuple[int, int], scene: Callable[..., str], **kw: object) -> Spec:
        transparent = bool(kw.get("isolated"))
        return Spec("mitochondria", name, size, partial(scene, **kw), transparent)
    single = scene_mito
    return [
        mito("mito_longitudinal_01", (768, 512), single, view="section", ratio=2.6, angle=0),
        mito("mito_longitudinal_02", (512, 768), single, view="section", ratio=3.0, angle=80,
             bend=0.15),
        mito("mito_longitudinal_03", (768, 768), single, view="section", ratio=2.2, angle=35),
        mito("mito_longitudinal_04", (896, 640), single, view="section", ratio=3.3, angle=-15,
             bend=-0.2),
        mito("mito_longitudinal_05", (640, 896), single, view="section", ratio=1.7, angle=120,
             scale=0.7),
        mito("mito_crosssection_01", (512, 512), single, view="transverse", ratio=1.15,
             angle=0),
        mito("mito_crosssection_02", (768, 768), single, view="transverse", ratio=1.35,
             angle=30),
        mito("mito_crosssection_03", (640, 896), single, view="transverse", ratio=1.5,
             angle=90, scale=0.8),
        mito("mito_cutaway_01", (896, 640), single, view="cutaway", ratio=2.6, angle=-10),
        mito("mito_cutaway_02", (768, 768), single, view="cutaway", ratio=2.3, angle=40),
        mito("mito_cutaway_03", (512, 768), single, view="cutaway", ratio=2.8, angle=95,
             bend=0.12),
        mito("mito_exterior_01", (768, 512), single, view="exterior", ratio=2.7, angle=10,
             bend=0.12),
        mito("mito_pair_01", (768, 768), scene_mito_pair, angle=-30),
        mito("mito_pair_02", (896, 640), scene_mito_pair, angle=5),
        mito("mito_cluster_01", (768, 768), scene_mito_cluster, count=4, transverse=1),
        mito("mito_cluster_02", (640, 896), scene_mito_cluster, count=5, transverse=0),
        mito("mito_icon_01", (512, 512), single, view="section", ratio=2.4, angle=-30,
             isolated=True),
        mito("mito_icon_02", (768, 768), single, view="cutaway", ratio=2.5, angle=20,
             isolated=True),
    ]


def portfolio_specs() -> list[Spec]:
    return sorted(_cells() + _mitochondria(), key=lambda spec: spec.relpath)


def render(spec: Spec) -> tuple[bytes, str]:
    """PNG bytes and caption; the name seeds the randomness so each image is reproducible."""
    rng = random.Random(spec.filename)
    canvas = new_canvas(spec.size, None if spec.transparent else spec.background)
    caption = spec.scene(canvas, rng)
    buffer = io.BytesIO()
    finish(canvas, spec.size).save(buffer, format="PNG")  # no text chunks, no timestamps
    return buffer.getvalue(), caption


def license_yaml(fields: dict[str, str]) -> str:
    # JSON strings are valid double-quoted YAML scalars: quoting keeps dates as strings.
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in fields.items())


def atomic_write(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary repository files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_sample_portfolio(root: Path) -> list[Path]:
    """Write every image with its caption and license sidecars; returns the image paths."""
    root = Path(root)
    specs = portfolio_specs()
    for folder in sorted({spec.folder for spec in specs}):
        atomic_write(root / folder / "_default.license.yaml", license_yaml(OWN_WORK).encode())
    written = []
    for spec in specs:
        png, caption = render(spec)
        image = root / spec.relpath
        atomic_write(image, png)
        atomic_write(image.with_suffix(".txt"), (caption + "\n").encode())
        if spec.relpath in LICENSE_OVERRIDES:
            sidecar = image.with_name(image.name + ".license.yaml")
            atomic_write(sidecar, license_yaml(LICENSE_OVERRIDES[spec.relpath]).encode())
        written.append(image)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "data" / "portfolio"
    parser.add_argument("root", nargs="?", type=Path, default=default)
    args = parser.parse_args(argv)
    images = write_sample_portfolio(args.root)
    print(f"wrote {len(images)} images to {args.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
