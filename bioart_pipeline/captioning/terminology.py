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
    # tag -> phrases that reveal it in a generated caption
    views: tuple[tuple[str, tuple[str, ...]], ...] = ()
    flags: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def fingerprint(self) -> str:
        content = [self.terms, self.style_words, self.views, self.flags]
        return f"v{self.version}-{sha256_json(content)[:12]}"

    def detect(self, caption: str, table: tuple[tuple[str, tuple[str, ...]], ...]
               ) -> list[str]:
        """Tags of `table` (views or flags) whose phrases occur as whole words."""
        return [tag for tag, phrases in table
                if any(_whole_word(phrase).search(caption) for phrase in phrases)]

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
        """Remove style phrases whole: "in a flat vector style", "a cartoon of" go with their
        article, noun and preposition, so "a flat vector cartoon of a cell" becomes "a cell"."""
        if not self.style_words:
            return caption
        words = "|".join(re.escape(w).replace(r"\ ", r"[\s-]+")  # "clip art" = "clip-art"
                         for w in sorted(self.style_words, key=len, reverse=True))
        phrase = re.compile(
            rf"\b(?:in\s+)?(?:(?:an?|the)\s+)?(?:(?:{words})\b[\s-]*)+"
            rf"(?:(?:{_STYLE_NOUNS})s?\b\s*)?(?:of\s+)?", re.IGNORECASE)
        return tidy(phrase.sub(" ", caption))


# Nouns that only name the medium once a style word precedes them ("vector illustration of").
_STYLE_NOUNS = "illustration|drawing|image|picture|rendering|graphic|artwork|art|design|style"


def _whole_word(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(phrase)}\b", re.IGNORECASE)


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
                       style_words=tuple(str(w) for w in raw.get("style_words") or ()),
                       views=_tag_table(path, raw, "views"), flags=_tag_table(path, raw, "flags"))


def _tag_table(path: Path, raw: dict, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    table = raw.get(key) or {}
    if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
        raise ValueError(f"{path}: `{key}` must map a tag to a list of phrases")
    return tuple((str(tag), tuple(str(p) for p in phrases)) for tag, phrases in table.items())
