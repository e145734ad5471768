"""The textbook corpus: generic science illustrations drawn procedurally, each with a caption
that names what is drawn (subjects, parts, counts, colours where they differ from the default).

It teaches the embedded base model to draw. Its look is deliberately *not* the sample studio's:
cream paper, thin sepia ink, a muted textbook palette and a shadow on the lower right, where the
studio draws on white with a heavy navy outline, pastel fills and a highlight on the upper left.
So a LoRA trained on the studio portfolio has a visible style to learn, and the XY plot has a
real shift to measure. Every image comes from (seed, index) alone: the corpus is reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

Point = tuple[float, float]
Colour = tuple[int, int, int]

SS = 4  # drawn 4x larger, then box-filtered down: anti-aliased edges
# (width, height) of corpus images: mostly square, some of the tiny profile's 5:3 buckets.
SIZES = ((128, 128), (128, 128), (128, 128), (160, 96), (96, 160))
INK: Colour = (92, 64, 44)  # sepia
PAPER: Colour = (241, 233, 214)
# Backgrounds other than the textbook's cream paper are named in the caption.
BACKGROUNDS: dict[str, Colour] = {"white": (255, 255, 255), "grey": (212, 212, 208),
                                  "pale blue": (212, 224, 236)}
COLOURS: dict[str, Colour] = {
    "red": (178, 62, 50), "orange": (214, 128, 50), "yellow": (226, 190, 78),
    "green": (104, 152, 80), "teal": (62, 138, 130), "blue": (66, 106, 172),
    "purple": (124, 86, 152), "pink": (222, 136, 158), "brown": (134, 90, 54),
    "grey": (134, 134, 130),
}
# The textbook's colour of each part when the caption names none.
PARTS: dict[str, Colour] = {
    "cell": (208, 218, 178), "membrane": (150, 128, 72), "nucleus": (202, 166, 102),
    "nucleolus": (122, 80, 48), "mitochondrion": (94, 152, 140), "cristae": (46, 94, 86),
    "chloroplast": (112, 158, 78), "grana": (60, 108, 50), "vacuole": (204, 218, 222),
    "wall": (182, 166, 104), "neuron": (152, 162, 192), "myelin": (226, 212, 172),
    "er": (192, 152, 122), "golgi": (122, 132, 172), "vesicle": (188, 182, 202),
    "bacterium": (162, 178, 102), "blood": (186, 82, 68), "virus": (172, 122, 152),
}
NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class CorpusItem:
    image: Image.Image
    caption: str
    subject: str


def corpus_item(seed: int, index: int) -> CorpusItem:
    """Image `index` of the corpus made with `seed`."""
    rng = random.Random(seed * 1_000_003 + index)
    size = rng.choice(SIZES)
    background_name = rng.choice(list(BACKGROUNDS)) if rng.random() < 0.15 else None
    painter = Painter(size, BACKGROUNDS.get(background_name, PAPER), rng)
    name = rng.choices(list(SUBJECTS), weights=[w for w, _ in SUBJECTS.values()])[0]
    caption = SUBJECTS[name][1](painter)
    if background_name:
        caption += f", on a {background_name} background"
    return CorpusItem(painter.finish(), caption, name)


# --- drawing ---------------------------------------------------------------------------------

def shade(colour: Colour, factor: float) -> Colour:
    """Darker (< 1) or lighter (> 1, towards white) version of a colour."""
    if factor <= 1:
        return tuple(round(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(round(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
            wobble: float = 0.0, rng: random.Random | None = None, exponent: float = 2.0,
            count: int = 72) -> list[Point]:
    """A (super)ellipse, rotated, with an optional low-frequency wobble for a drawn look."""
    phases = [rng.uniform(0, 2 * math.pi) for _ in range(3)] if rng and wobble else [0, 0, 0]
    ca, sa = math.cos(angle), math.sin(angle)
    points = []
    for i in range(count):
        t = 2 * math.pi * i / count
        k = 1 + wobble * sum(math.sin(f * t + p) / f for f, p in zip((2, 3, 5), phases,
                                                                     strict=True))
        x = k * rx * math.copysign(abs(math.cos(t)) ** (2 / exponent), math.cos(t))
        y = k * ry * math.copysign(abs(math.sin(t)) ** (2 / exponent), math.sin(t))
        points.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return points


def regular(cx: float, cy: float, r: float, sides: int, angle: float = 0.0,
            inner: float | None = None) -> list[Point]:
    """A regular polygon, or a star when `inner` (radius ratio of the inner corners) is set."""
    corners = sides * (2 if inner else 1)
    points = []
    for i in range(corners):
        radius = r * (inner if inner and i % 2 else 1)
        a = angle + math.pi * 2 * i / corners
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def scaled(points: list[Point], factor: float, dx: float = 0.0, dy: float = 0.0) -> list[Point]:
    cx = sum(x for x, _ in points) / len(points)
    cy = sum(y for _, y in points) / len(points)
    return [(cx + (x - cx) * factor + dx, cy + (y - cy) * factor + dy) for x, y in points]


def curve(start: Point, end: Point, bend: float, count: int = 16) -> list[Point]:
    """A quadratic arc from start to end, bowed sideways by `bend` (fraction of its length)."""
    (x0, y0), (x1, y1) = start, end
    mx, my = (x0 + x1) / 2 - (y1 - y0) * bend, (y0 + y1) / 2 + (x1 - x0) * bend
    return [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t * t * x1,
             (1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t * t * y1)
            for t in (i / (count - 1) for i in range(count))]


class Painter:
    """Draws in final-image pixel coordinates on a supersampled canvas."""

    def __init__(self, size: tuple[int, int], background: Colour, rng: random.Random):
        self.width, self.height = size
        self.rng = rng
        self.image = Image.new("RGB", (self.width * SS, self.height * SS), background)
        self.draw = ImageDraw.Draw(self.image)
        self.short = min(size)

    @property
    def centre(self) -> Point:
        return self.width / 2, self.height / 2

    def _px(self, points: list[Point]) -> list[Point]:
        return [(x * SS, y * SS) for x, y in points]

    def shape(self, points: list[Point], fill: Colour, shadow: bool = True,
              ink: float = 1.0) -> None:
        """Flat fill, a darker crescent on the lower right, a thin sepia outline."""
        if shadow:
            self.draw.polygon(self._px(points), fill=shade(fill, 0.8))
            offset = -0.025 * self.short
            self.draw.polygon(self._px(scaled(points, 0.94, offset, offset)), fill=fill)
        else:
            self.draw.polygon(self._px(points), fill=fill)
        if ink:
            self.draw.polygon(self._px(points), outline=INK, width=round(ink * SS))

    def line(self, points: list[Point], colour: Colour, width: float, ink: float = 0.0
             ) -> None:
        """A stroke; with `ink`, outlined in sepia like the shapes."""
        if ink:
            self.draw.line(self._px(points), fill=INK, width=round((width + 2 * ink) * SS),
                           joint="curve")
            for x, y in (points[0], points[-1]):
                self.dot(x, y, width / 2 + ink, INK)
        self.draw.line(self._px(points), fill=colour, width=max(1, round(width * SS)),
                       joint="curve")

    def dot(self, x: float, y: float, r: float, colour: Colour) -> None:
        self.draw.ellipse((SS * (x - r), SS * (y - r), SS * (x + r), SS * (y + r)), fill=colour)

    def finish(self) -> Image.Image:
        return self.image.resize((self.width, self.height), Image.Resampling.BOX)


# --- captions --------------------------------------------------------------------------------

def count_word(n: int) -> str:
    return NUMBERS[n] if n < len(NUMBERS) else str(n)


def article(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def listing(items: list[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def pick_colour(rng: random.Random, part: str, chance: float = 0.25) -> tuple[Colour, str]:
    """The part's textbook colour (no word), or a named colour with its word."""
    if rng.random() < chance:
        name = rng.choice(list(COLOURS))
        return COLOURS[name], name + " "
    return PARTS[part], ""


# --- subjects: each draws on the painter and returns its caption ------------------------------

def shapes(p: Painter) -> str:
    kinds = {"circle": lambda x, y, r, a: ellipse(x, y, r, r),
             "square": lambda x, y, r, a: regular(x, y, r * 1.2, 4, a + math.pi / 4),
             "triangle": lambda x, y, r, a: regular(x, y, r * 1.2, 3, a - math.pi / 2),
             "hexagon": lambda x, y, r, a: regular(x, y, r * 1.1, 6, a),
             "star": lambda x, y, r, a: regular(x, y, r * 1.3, 5, a - math.pi / 2, inner=0.45),
             "diamond": lambda x, y, r, a: [(x + u * 0.7, y + v) for u, v in
                                           regular(0, 0, r * 1.25, 4, a)]}
    n = p.rng.choice((1, 1, 2, 2, 3, 4))
    slots = _slots(p, n)
    named = []
    for x, y, r in slots:
        kind = p.rng.choice(list(kinds))
        colour = p.rng.choice(list(COLOURS))
        p.shape(kinds[kind](x, y, r, p.rng.uniform(-0.2, 0.2)), COLOURS[colour])
        named.append(article(f"{colour} {kind}"))
    return named[0] if n == 1 else f"{count_word(n)} shapes: {listing(named)}"


def _slots(p: Painter, n: int) -> list[tuple[float, float, float]]:
    """n non-overlapping circles (x, y, r) for separate objects."""
    r = p.short * (0.34 if n == 1 else 0.24 if n == 2 else 0.18)
    placed: list[tuple[float, float, float]] = []
    for _ in range(200):
        if len(placed) == n:
            break
        rr = r * p.rng.uniform(0.75, 1.0)
        x = p.rng.uniform(rr + 4, p.width - rr - 4)
        y = p.rng.uniform(rr + 4, p.height - rr - 4)
        if all(math.hypot(x - a, y - b) > rr + c + 3 for a, b, c in placed):
            placed.append((x, y, rr))
    return placed


def mitochondrion_at(p: Painter, x: float, y: float, length: float, angle: float,
                     colour: Colour, view: str = "section") -> None:
    """Outer membrane, matrix and cristae folding in from the inner membrane."""
    width = length * p.rng.uniform(0.42, 0.55)
    outer = ellipse(x, y, length / 2, width / 2, angle, exponent=2.4)
    p.shape(outer, colour, ink=0.8)
    if view == "exterior":
        return
    inner_colour = shade(colour, 1.45)
    p.shape(scaled(outer, 0.8), inner_colour, shadow=False, ink=0)
    ca, sa = math.cos(angle), math.sin(angle)
    folds = max(2, round(length / (0.09 * p.short)))
    for k in range(folds):
        u = (k + 0.5) / folds * 0.78 - 0.39  # along the long axis, inside the matrix
        side = 1 if k % 2 else -1
        half = width / 2 * 0.78 * math.sqrt(max(0.0, 1 - (2 * u) ** 2))
        start = (u * length, side * half)
        end = (u * length, side * (half - width * 0.5))
        pts = [(x + a * ca - b * sa, y + a * sa + b * ca) for a, b in (start, end)]
        p.line(pts, shade(colour, 0.55), max(0.8, 0.05 * width))


def transverse_mitochondrion(p: Painter, x: float, y: float, r: float, colour: Colour) -> None:
    outer = ellipse(x, y, r, r * p.rng.uniform(0.85, 1.0), p.rng.uniform(0, math.pi),
                    wobble=0.05, rng=p.rng)
    p.shape(outer, colour)
    p.shape(scaled(outer, 0.82), shade(colour, 1.45), shadow=False, ink=0)
    for k in range(p.rng.randint(4, 7)):
        a = 2 * math.pi * k / 6 + p.rng.uniform(-0.3, 0.3)
        p.line([(x + 0.8 * r * math.cos(a), y + 0.8 * r * math.sin(a)),
                (x + 0.3 * r * math.cos(a), y + 0.3 * r * math.sin(a))],
               shade(colour, 0.55), max(0.8, 0.08 * r))


def mitochondria(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "mitochondrion")
    view = p.rng.choice(("section", "section", "transverse", "exterior"))
    n = p.rng.choice((1, 1, 1, 2, 3))
    subject = article(f"{word}mitochondrion") if n == 1 else f"{count_word(n)} {word}mitochondria"
    if view == "transverse":
        for x, y, r in _slots(p, n):
            transverse_mitochondrion(p, x, y, r, colour)
        return f"cross-section of {subject} showing cristae and matrix"
    for x, y, r in _slots(p, n):
        mitochondrion_at(p, x, y, 2 * r * p.rng.uniform(0.9, 1.0), p.rng.uniform(-0.6, 0.6),
                         colour, view)
    if view == "exterior":
        return f"{subject}, exterior view"
    return p.rng.choice((f"{subject} with cristae, longitudinal section",
                         f"longitudinal section of {subject} with cristae and matrix",
                         f"{subject} with cristae"))


def _inside(body: list[Point], x: float, y: float) -> bool:
    """Point in polygon (even-odd)."""
    inside = False
    for (x0, y0), (x1, y1) in zip(body, [*body[1:], body[0]], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def _free_spot(p: Painter, body: list[Point], taken: list[tuple[float, float, float]],
               r: float) -> tuple[float, float] | None:
    for _ in range(60):
        x, y = p.rng.uniform(0, p.width), p.rng.uniform(0, p.height)
        if all(_inside(body, x + dx, y + dy) for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r))
               ) and all(math.hypot(x - a, y - b) > r + c for a, b, c in taken):
            taken.append((x, y, r))
            return x, y
    return None


def animal_cell(p: Painter) -> str:
    cx, cy = p.centre
    rx, ry = p.width * p.rng.uniform(0.4, 0.47), p.height * p.rng.uniform(0.4, 0.47)
    body = ellipse(cx, cy, rx, ry, 0, wobble=0.08, rng=p.rng)
    cell_colour, cell_word = pick_colour(p.rng, "cell", 0.2)
    p.shape(body, cell_colour)
    p.line([*body, body[0]], PARTS["membrane"], 1.2)
    parts, taken = [], []
    nucleus_colour, nucleus_word = pick_colour(p.rng, "nucleus")
    nr = min(rx, ry) * p.rng.uniform(0.28, 0.38)
    nx, ny = cx + p.rng.uniform(-0.2, 0.2) * rx, cy + p.rng.uniform(-0.2, 0.2) * ry
    p.shape(ellipse(nx, ny, nr, nr * p.rng.uniform(0.8, 1.0), p.rng.uniform(0, 3), 0.05, p.rng),
            nucleus_colour)
    p.dot(nx + nr * 0.2, ny - nr * 0.15, nr * 0.28, PARTS["nucleolus"])
    taken.append((nx, ny, nr * 1.5))
    parts.append(f"{article(nucleus_word + 'nucleus')} and nucleolus")
    if p.rng.random() < 0.5:
        for k in range(3):
            start = math.pi * p.rng.uniform(0, 2)
            arc = [(nx + nr * (1.25 + 0.22 * k) * math.cos(start + t / 10),
                    ny + nr * (1.25 + 0.22 * k) * math.sin(start + t / 10)) for t in range(14)]
            p.line(arc, PARTS["er"], 1.3, ink=0.5)
        parts.append("endoplasmic reticulum")
    mito_colour, mito_word = pick_colour(p.rng, "mitochondrion")
    n_mito = sum(1 for _ in range(p.rng.randint(0, 5))
                 if (spot := _free_spot(p, body, taken, 0.09 * p.short))
                 and not mitochondrion_at(p, *spot, 0.17 * p.short, p.rng.uniform(0, 3),
                                          mito_colour))
    if n_mito:
        parts.append(f"{count_word(n_mito)} {mito_word}mitochondri{'on' if n_mito == 1 else 'a'}")
    if p.rng.random() < 0.4 and (spot := _free_spot(p, body, taken, 0.1 * p.short)):
        golgi_stack(p, *spot, 0.16 * p.short, 4, PARTS["golgi"])
        parts.append("a Golgi apparatus")
    if p.rng.random() < 0.5:
        for _ in range(p.rng.randint(3, 6)):
            if spot := _free_spot(p, body, taken, 0.03 * p.short):
                p.shape(ellipse(*spot, 0.025 * p.short, 0.025 * p.short), PARTS["vesicle"],
                        shadow=False, ink=0.6)
        parts.append("vesicles")
    if p.rng.random() < 0.5:
        for _ in range(25):
            x, y = p.rng.uniform(0, p.width), p.rng.uniform(0, p.height)
            if _inside(body, x, y) and all(math.hypot(x - a, y - b) > c for a, b, c in taken):
                p.dot(x, y, 0.6, INK)
        parts.append("ribosomes")
    what = article(f"{cell_word}animal cell")
    return p.rng.choice((f"cross-section of {what} with {listing(parts)}",
                         f"{what} with {listing(parts)}",
                         f"diagram of {what} showing {listing(parts)}"))


def golgi_stack(p: Painter, x: float, y: float, size: float, count: int, colour: Colour
                ) -> None:
    for k in range(count):
        dy = (k - (count - 1) / 2) * size * 0.28
        half = size * (0.55 - 0.06 * abs(k - (count - 1) / 2))
        p.line(curve((x - half, y + dy), (x + half, y + dy), -0.18), colour,
               max(1.0, size * 0.14), ink=0.6)


def golgi(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "golgi")
    cx, cy = p.centre
    n = p.rng.randint(3, 6)
    golgi_stack(p, cx, cy, p.short * 0.62, n, colour)
    for _ in range(p.rng.randint(3, 7)):
        a = p.rng.uniform(0, 2 * math.pi)
        p.shape(ellipse(cx + 0.42 * p.width * math.cos(a), cy + 0.4 * p.height * math.sin(a),
                        0.04 * p.short, 0.04 * p.short), colour, shadow=False, ink=0.7)
    return (f"{article(word + 'Golgi apparatus')} with {count_word(n)} stacked cisternae "
            "and vesicles")


def chloroplast_at(p: Painter, x: float, y: float, length: float, angle: float) -> None:
    width = length * 0.55
    outer = ellipse(x, y, length / 2, width / 2, angle)
    p.shape(outer, PARTS["chloroplast"], ink=0.8)
    ca, sa = math.cos(angle), math.sin(angle)
    stacks = max(2, round(length / (0.07 * p.short)))
    for k in range(stacks):
        u = ((k + 0.5) / stacks - 0.5) * length * 0.7
        v = (0.18 if k % 2 else -0.18) * width
        for layer in range(3):
            w = v + (layer - 1) * width * 0.1
            pts = [(x + a * ca - w * sa, y + a * sa + w * ca)
                   for a in (u - length * 0.05, u + length * 0.05)]
            p.line(pts, PARTS["grana"], max(0.8, width * 0.07))


def chloroplast(p: Painter) -> str:
    cx, cy = p.centre
    chloroplast_at(p, cx, cy, p.width * 0.8, p.rng.uniform(-0.3, 0.3) if p.width >= p.height
                   else math.pi / 2)
    return p.rng.choice(("a chloroplast with grana and thylakoid stacks",
                         "cross-section of a chloroplast with grana",
                         "a chloroplast, thylakoids stacked into grana"))


def plant_cell(p: Painter) -> str:
    cx, cy = p.centre
    wall = ellipse(cx, cy, p.width * 0.46, p.height * 0.44, 0, 0.03, p.rng, exponent=5)
    p.shape(wall, PARTS["wall"])
    body = scaled(wall, 0.9)
    p.shape(body, PARTS["cell"], shadow=False, ink=0.8)
    parts = ["a cell wall"]
    taken = []
    if p.rng.random() < 0.8:
        vacuole = ellipse(cx, cy, p.width * 0.22, p.height * 0.2, 0, 0.08, p.rng)
        p.shape(vacuole, PARTS["vacuole"], shadow=False, ink=0.7)
        taken.append((cx, cy, min(p.width, p.height) * 0.22))
        parts.append("a large central vacuole")
    nucleus_colour, nucleus_word = pick_colour(p.rng, "nucleus")
    if spot := _free_spot(p, body, taken, 0.1 * p.short):
        p.shape(ellipse(*spot, 0.09 * p.short, 0.08 * p.short), nucleus_colour)
        parts.append(article(f"{nucleus_word}nucleus"))
    n_chloro = sum(1 for _ in range(p.rng.randint(2, 7))
                   if (spot := _free_spot(p, body, taken, 0.075 * p.short))
                   and not chloroplast_at(p, *spot, 0.15 * p.short, p.rng.uniform(0, 3)))
    if n_chloro:
        parts.append(f"{count_word(n_chloro)} chloroplast{'s' if n_chloro > 1 else ''}")
    mito_colour, mito_word = pick_colour(p.rng, "mitochondrion")
    n_mito = sum(1 for _ in range(p.rng.choice((0, 0, 1, 2)))
                 if (spot := _free_spot(p, body, taken, 0.07 * p.short))
                 and not mitochondrion_at(p, *spot, 0.13 * p.short, p.rng.uniform(0, 3),
                                          mito_colour))
    if n_mito:
        parts.append(f"{'a' if n_mito == 1 else count_word(n_mito)} {mito_word}"
                     f"mitochondri{'on' if n_mito == 1 else 'a'}")
    return p.rng.choice((f"a plant cell with {listing(parts)}",
                         f"cross-section of a plant cell with {listing(parts)}"))


def neuron(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "neuron")
    flip = p.rng.random() < 0.5
    sx = p.width * (0.28 if not flip else 0.72)
    sy = p.height * p.rng.uniform(0.35, 0.65)
    r = p.short * p.rng.uniform(0.1, 0.14)
    direction = 0.0 if not flip else math.pi
    n_dendrites = p.rng.randint(3, 6)
    for k in range(n_dendrites):
        a = direction + math.pi * (0.55 + 0.9 * (k + 0.5) / n_dendrites) + p.rng.uniform(-.2, .2)
        length = p.short * p.rng.uniform(0.2, 0.3)
        end = (sx + (r + length) * math.cos(a), sy + (r + length) * math.sin(a))
        branch = curve((sx, sy), end, p.rng.uniform(-0.15, 0.15), 10)
        p.line(branch, colour, max(1.0, r * 0.25), ink=0.6)
        for side in (-0.5, 0.5):
            tip = (end[0] + length * 0.4 * math.cos(a + side),
                   end[1] + length * 0.4 * math.sin(a + side))
            p.line([end, tip], colour, max(0.8, r * 0.12), ink=0.5)
    axon_end = (p.width * (0.92 if not flip else 0.08), p.height * p.rng.uniform(0.3, 0.7))
    axon = curve((sx, sy), axon_end, p.rng.uniform(-0.12, 0.12), 24)
    p.line(axon, colour, max(1.2, r * 0.22), ink=0.6)
    myelinated = p.rng.random() < 0.5
    if myelinated:
        for i in range(8, len(axon) - 3, 4):
            (x0, y0), (x1, y1) = axon[i], axon[i + 2]
            p.shape(ellipse((x0 + x1) / 2, (y0 + y1) / 2, math.hypot(x1 - x0, y1 - y0) / 2,
                            r * 0.28, math.atan2(y1 - y0, x1 - x0)), PARTS["myelin"],
                    shadow=False, ink=0.6)
    for side in (-0.6, 0, 0.6):
        tip = (axon_end[0] + 0.06 * p.short * math.cos(direction + side),
               axon_end[1] + 0.06 * p.short * math.sin(direction + side))
        p.line([axon_end, tip], colour, 1.0, ink=0.5)
        p.dot(*tip, 1.6, colour)
    p.shape(ellipse(sx, sy, r, r * 0.9, 0, 0.1, p.rng), colour)
    p.dot(sx, sy, r * 0.38, PARTS["nucleolus"])
    axon_words = "a myelinated axon" if myelinated else "an axon"
    subject = article(f"{word}neuron")
    return p.rng.choice((f"{subject} with dendrites and {axon_words}",
                         f"{subject} with a cell body, a nucleus, {count_word(n_dendrites)} "
                         f"dendrites and {axon_words}",
                         f"{subject} (nerve cell) with dendrites, {axon_words} and axon "
                         "terminals"))


def nucleus(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "nucleus")
    cx, cy = p.centre
    envelope = ellipse(cx, cy, p.width * 0.4, p.height * 0.38, p.rng.uniform(-0.2, 0.2),
                       0.05, p.rng)
    p.shape(envelope, shade(colour, 0.85))
    inner = scaled(envelope, 0.9)
    p.shape(inner, colour, shadow=False, ink=0.6)
    for i in range(0, len(envelope), len(envelope) // p.rng.randint(6, 10)):
        (x0, y0), (x1, y1) = envelope[i], inner[i]
        p.line([(x0, y0), (x1, y1)], shade(colour, 1.3), 1.6)
    for _ in range(6):
        x = cx + p.rng.uniform(-0.25, 0.25) * p.width
        y = cy + p.rng.uniform(-0.25, 0.25) * p.height
        p.shape(ellipse(x, y, 0.05 * p.short, 0.03 * p.short, p.rng.uniform(0, 3), 0.2, p.rng),
                shade(colour, 0.75), shadow=False, ink=0)
    p.shape(ellipse(cx + 0.08 * p.width, cy - 0.05 * p.height, 0.11 * p.short, 0.1 * p.short),
            PARTS["nucleolus"])
    return p.rng.choice((f"close-up of {article(word + 'cell nucleus')} with a nuclear "
                         "envelope, nuclear pores, a nucleolus and chromatin",
                         f"{article(word + 'nucleus')} with nuclear pores, nucleolus and "
                         "chromatin"))


def bacteria(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "bacterium")
    n = p.rng.choice((1, 1, 2, 3, 4))
    for x, y, r in _slots(p, n):
        angle = p.rng.uniform(0, math.pi)
        body = ellipse(x, y, r * 0.95, r * 0.4, angle, exponent=3)
        ca, sa = math.cos(angle), math.sin(angle)
        tail = [(x - ca * (r * 0.9 + t * r * 0.12) + sa * math.sin(t * 1.3) * r * 0.12,
                 y - sa * (r * 0.9 + t * r * 0.12) - ca * math.sin(t * 1.3) * r * 0.12)
                for t in range(9)]
        p.line(tail, INK, 0.7)
        p.shape(body, colour)
    what = f"a rod-shaped {word}bacterium" if n == 1 else \
        f"{count_word(n)} rod-shaped {word}bacteria"
    return f"{what} with flagella"


def blood_cells(p: Painter) -> str:
    n = p.rng.randint(2, 6)
    for x, y, r in _slots(p, n):
        disc = ellipse(x, y, r, r * p.rng.uniform(0.6, 1.0), p.rng.uniform(0, 3))
        p.shape(disc, PARTS["blood"])
        p.shape(scaled(disc, 0.45), shade(PARTS["blood"], 1.25), shadow=False, ink=0)
    return f"{count_word(n)} red blood cells"


def virus(p: Painter) -> str:
    colour, word = pick_colour(p.rng, "virus")
    n = p.rng.choice((1, 1, 2, 3))
    for x, y, r in _slots(p, n):
        core = r * 0.68
        for k in range(12):
            a = 2 * math.pi * k / 12
            tip = (x + r * math.cos(a), y + r * math.sin(a))
            p.line([(x + core * math.cos(a), y + core * math.sin(a)), tip], INK, 0.8)
            p.dot(*tip, max(1.0, r * 0.09), colour)
        p.shape(regular(x, y, core, 6, p.rng.uniform(0, 1)), colour)
    what = article(f"{word}virus particle") if n == 1 else f"{count_word(n)} {word}virus particles"
    return f"{what} with spike proteins"


SUBJECTS: dict[str, tuple[float, Callable[[Painter], str]]] = {
    "shapes": (0.16, shapes), "animal_cell": (0.2, animal_cell),
    "plant_cell": (0.12, plant_cell), "mitochondria": (0.13, mitochondria),
    "neuron": (0.1, neuron), "nucleus": (0.05, nucleus), "chloroplast": (0.05, chloroplast),
    "golgi": (0.05, golgi), "bacteria": (0.05, bacteria), "blood_cells": (0.04, blood_cells),
    "virus": (0.05, virus),
}
