"""Small PNG pictures for asset metadata (no plotting library needed)."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw

_MARGIN = 40


def line_chart(values: list[float], title: str, width: int = 480, height: int = 240,
               marks: list[int] | None = None) -> Image.Image:
    """A line chart of `values` (x = index) with min/max labels; `marks` draws vertical
    lines at those indices (e.g. checkpoints)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, 8), title, fill="black")
    if not values:
        return image
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    plot_w, plot_h = width - 2 * _MARGIN, height - 2 * _MARGIN
    last = max(len(values) - 1, 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return _MARGIN + plot_w * i / last, _MARGIN + plot_h * (1 - (v - low) / span)

    draw.rectangle([_MARGIN, _MARGIN, width - _MARGIN, height - _MARGIN], outline="#999999")
    for i in marks or []:
        x = point(min(i, last), low)[0]
        draw.line([x, _MARGIN, x, height - _MARGIN], fill="#c8d8f0")
    draw.line([point(i, v) for i, v in enumerate(values)], fill="#c0392b", width=2)
    draw.text((4, _MARGIN - 6), f"{high:.3g}", fill="black")
    draw.text((4, height - _MARGIN - 6), f"{low:.3g}", fill="black")
    draw.text((width - _MARGIN - 20, height - _MARGIN + 6), f"{len(values)}", fill="black")
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def markdown_image(image: Image.Image, alt: str, max_side: int = 640) -> str:
    """Inline PNG for `MetadataValue.md`: Dagster has no image metadata type."""
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    encoded = base64.b64encode(png_bytes(image)).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"


def wrap_words(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters (a longer word gets a line to itself)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines or [""]
