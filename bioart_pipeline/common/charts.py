"""Small PNG pictures for asset metadata (no plotting library needed)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

TICKS = 5


def line_chart(values: list[float], title: str, x_label: str, y_label: str,
               width: int = 640, height: int = 300, marks: list[int] | None = None
               ) -> Image.Image:
    """A line chart of `values` (x = index) with both axes ticked and labelled; `marks` draws
    vertical lines at those indices (e.g. checkpoints)."""
    font = ImageFont.load_default(size=13)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 64, 30, width - 16, height - 44
    draw.text((left, 6), title, fill="black", font=font)
    draw.text((left + (right - left) // 2, height - 18), x_label, fill="black", font=font,
              anchor="mm")
    _vertical_text(image, y_label, (4, top + (bottom - top) // 2), font)
    draw.rectangle([left, top, right, bottom], outline="#999999")
    if not values:
        return image
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    last = max(len(values) - 1, 1)

    def point(i: float, v: float) -> tuple[float, float]:
        return (left + (right - left) * i / last,
                top + (bottom - top) * (1 - (v - low) / span))

    for tick in range(TICKS):
        value = low + span * tick / (TICKS - 1)
        y = point(0, value)[1]
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((left - 6, y), f"{value:.3g}", fill="black", font=font, anchor="rm")
        index = round(last * tick / (TICKS - 1))
        x = point(index, low)[0]
        draw.line([x, bottom, x, bottom + 4], fill="black")
        draw.text((x, bottom + 6), str(index), fill="black", font=font, anchor="mt")
    for i in marks or []:
        x = point(min(i, last), low)[0]
        draw.line([x, top, x, bottom], fill="#c8d8f0")
    draw.line([point(i, v) for i, v in enumerate(values)], fill="#c0392b", width=2)
    return image


def _vertical_text(image: Image.Image, text: str, at: tuple[int, int],
                   font: ImageFont.FreeTypeFont) -> None:
    """`text` turned 90 degrees, centred vertically on `at`."""
    box = font.getbbox(text)
    label = Image.new("RGB", (box[2] + 2, box[3] + 2), "white")
    ImageDraw.Draw(label).text((0, 0), text, fill="black", font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (at[0], at[1] - label.height // 2))


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


def captioned_strip(images: list[Image.Image], prompts: Sequence[str], size: int
                    ) -> Image.Image:
    """The images side by side, each with its prompt wrapped underneath."""
    font_size = max(11, size // 16)
    font = ImageFont.load_default(size=font_size)
    captions = [wrap_words(p, max(12, int(size / (font_size * 0.55)))) for p in prompts]
    line_h = font_size + font_size // 4
    strip = Image.new("RGB", (size * len(images),
                              size + max(map(len, captions)) * line_h + font_size // 2), "white")
    draw = ImageDraw.Draw(strip)
    for index, (image, lines) in enumerate(zip(images, captions, strict=True)):
        strip.paste(image.convert("RGB").resize((size, size)), (index * size, 0))
        for row, line in enumerate(lines):
            draw.text((index * size + 3, size + 2 + row * line_h), line, fill="black",
                      font=font)
    return strip
