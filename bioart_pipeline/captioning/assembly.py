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

Captions must fit the text encoder (SDXL's CLIP: 75 tokens between its start and end
tokens); beyond that the model never sees the rest. A caption too long loses words from the
end of its description, never the trigger or a tag, and the words cut are reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    # the text encoder's token count of a caption, and how many it reads (None: no limit)
    count_tokens: Callable[[str], int] | None = None
    max_tokens: int = 75


@dataclass(frozen=True)
class Assembled:
    caption: str
    truncated: str = ""  # the description's words cut so that the caption fits


def background_tag(composited: bool, colour: str) -> str | None:
    if not composited:
        return None
    return "white background" if colour.upper() == "#FFFFFF" else "simple background"


def assemble_model_caption(text: str, rules: CaptionRules, composited: bool, trigger: bool = True
                           ) -> tuple[Assembled, list[str]]:
    """A generated caption: terminology, tags in order; returns (caption, replacements fired)."""
    terms = rules.terminology
    described, fired = terms.apply(_OPENINGS.sub("", text.strip()))
    if rules.lora_type == "style":
        described = terms.strip_style(described)
    after = list(terms.detect(described, terms.views))
    if rules.lora_type != "style":
        after += rules.style_tags
    after += [*terms.detect(described, terms.flags), background_tag(composited, rules.background)]
    return _fit(rules, trigger, list(rules.subject_tags), described, after), fired


def assemble_artist_caption(text: str, rules: CaptionRules, composited: bool,
                            trigger: bool = True) -> Assembled:
    described = text.strip()
    if rules.lora_type == "style":
        described = rules.terminology.strip_style(described)
    return _fit(rules, trigger, [], described, [background_tag(composited, rules.background)])


def _fit(rules: CaptionRules, trigger: bool, before: list[str | None], described: str,
         after: list[str | None]) -> Assembled:
    """The caption with as much of the description as fits in the token budget."""
    start = rules.trigger if trigger else ""
    words = described.split()

    def caption(keep: int) -> str:
        return _join(start, [*before, " ".join(words[:keep]), *after])

    if rules.count_tokens is None or rules.count_tokens(caption(len(words))) <= rules.max_tokens:
        return Assembled(caption(len(words)))
    low, high = 0, len(words)  # the most words that fit: binary search over the count
    while low < high:
        middle = (low + high + 1) // 2
        if rules.count_tokens(caption(middle)) <= rules.max_tokens:
            low = middle
        else:
            high = middle - 1
    return Assembled(caption(low), truncated=" ".join(words[low:]))


def _join(trigger: str, parts: list[str | None]) -> str:
    """Comma-joined, without empty parts or a tag the text already contains."""
    out: list[str] = [trigger] if trigger else []
    for part in parts:
        part = tidy(part or "")
        if part and not any(part.lower() in done.lower() for done in out):
            out.append(part)
    return tidy(", ".join(out))
