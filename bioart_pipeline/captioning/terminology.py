"""The studio's terminology file: lay phrases become anatomical terms in generated captions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from bioart_pipeline.common.files import sha256_json


@dataclass(frozen=True)
class Terminology:
    version: str
    terms: tuple[tuple[str, str], ...]
    style_words: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return f"v{self.version}-{sha256_json([self.terms, self.style_words])[:12]}"

    def apply(self, caption: str) -> tuple[str, list[str]]:
        """Replace whole-word phrases (any case, simple plurals); report which fired."""
        fired = []
        for phrase, term in self.terms:
            pattern = re.compile(rf"\b{re.escape(phrase)}(s|es)?\b", re.IGNORECASE)
            caption, count = pattern.subn(term, caption)
            if count:
                fired.append(f"{phrase} -> {term}")
        return caption, fired

    def strip_style(self, caption: str) -> str:
        for word in self.style_words:
            caption = re.sub(rf"\b{re.escape(word)}\b", "", caption, flags=re.IGNORECASE)
        return tidy(caption)


def tidy(caption: str) -> str:
    """Collapse the spaces and stray commas that removals leave behind."""
    caption = re.sub(r"\s+", " ", caption)
    caption = re.sub(r"\s+([,.])", r"\1", caption)
    caption = re.sub(r"(,\s*)+,", ",", caption)
    return caption.strip(" ,")


def load_terminology(path: Path) -> Terminology:
    if not path.exists():
        return Terminology(version="none", terms=(), style_words=())
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    terms = raw.get("terms") or {}
    if not isinstance(terms, dict):
        raise ValueError(f"{path}: `terms` must map a lay phrase to an anatomical term")
    # Longest phrases first, so "bean-shaped object" wins over "bean shape".
    ordered = sorted(((str(k), str(v)) for k, v in terms.items()), key=lambda kv: -len(kv[0]))
    return Terminology(version=str(raw.get("version", "1")), terms=tuple(ordered),
                       style_words=tuple(str(w) for w in raw.get("style_words") or ()))
