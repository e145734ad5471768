"""Caption assembly: the trigger word first, then tags in one documented order.

    trigger, subject tags, description, view tags, style tags, flagged content, background

- description: the artist's sidecar text, or the model's caption after the terminology pass;
- subject and style tags come from the spec; style tags only for subject-type LoRAs (a style
  LoRA must learn the look itself, so its captions carry no style words at all);
- view tags (cross-section, close-up, ...) and flagged content (text labels, scale bar,
  watermark) are detected in model captions with the terminology file's phrases: naming
  unwanted content lets a negative prompt remove it later;
- background: "white background" (or "simple background" for another colour) when the
  image had transparency and was composited.
The artist's text is never rewritten beyond the trigger, style-word removal for style LoRAs
and the background tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bioart_pipeline.captioning.terminology import Terminology, tidy

# Florence-2's stock openings, which carry no information for a LoRA.
_OPENINGS = re.compile(r"^(the image (shows|is|depicts)|this (image|is an? (image|illustration))"
                       r" (shows|of)?|in this image,?)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class CaptionRules:
    trigger: str
    lora_type: str
    terminology: Terminology
    subject_tags: tuple[str, ...] = ()
    style_tags: tuple[str, ...] = ()
    background: str = "#FFFFFF"


def background_tag(composited: bool, colour: str) -> str | None:
    if not composited:
        return None
    return "white background" if colour.upper() == "#FFFFFF" else "simple background"


def assemble_model_caption(text: str, rules: CaptionRules, composited: bool, trigger: bool = True
                           ) -> tuple[str, list[str]]:
    """A generated caption: terminology, tags in order; returns (caption, replacements fired)."""
    terms = rules.terminology
    described, fired = terms.apply(_OPENINGS.sub("", text.strip()))
    if rules.lora_type == "style":
        described = terms.strip_style(described)
    parts = [*rules.subject_tags, described, *terms.detect(described, terms.views)]
    if rules.lora_type != "style":
        parts += rules.style_tags
    parts += [*terms.detect(described, terms.flags),
              background_tag(composited, rules.background)]
    return _join(rules.trigger if trigger else "", parts), fired


def assemble_artist_caption(text: str, rules: CaptionRules, composited: bool,
                            trigger: bool = True) -> str:
    described = text.strip()
    if rules.lora_type == "style":
        described = rules.terminology.strip_style(described)
    return _join(rules.trigger if trigger else "",
                 [described, background_tag(composited, rules.background)])


def _join(trigger: str, parts: list[str | None]) -> str:
    """Comma-joined, without empty parts or a tag the text already contains."""
    out: list[str] = [trigger] if trigger else []
    for part in parts:
        part = tidy(part or "")
        if part and not any(part.lower() in done.lower() for done in out):
            out.append(part)
    return tidy(", ".join(out))
