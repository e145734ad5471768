"""The studio file (`data/studio.yaml`): who the studio is, so "own work" is declared, not
guessed. An image is own work only when its licence is one of `own_licenses` and its author
is one of `authors`; third-party terms known to allow training are listed with where that is
written down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bioart_pipeline.common.files import read_yaml_mapping

STUDIO_FILE = "studio.yaml"


@dataclass(frozen=True)
class Studio:
    name: str = ""
    authors: tuple[str, ...] = ()
    own_licenses: tuple[str, ...] = ()
    # third-party licence id -> where its terms allowing AI training are written down
    permitted_licenses: dict[str, str] = field(default_factory=dict)
    declared: bool = False  # False: no studio file, so nothing is own work
    # whose signature a release must carry: a CA certificate (PEM path) or sha256:<fingerprint>
    # of the signing certificate (release/trust.py)
    trust_anchor: str = ""
    # for the public training-data summary (release/training_summary.py)
    contact: str = ""
    authorised_representative: str = ""  # in the Union, for a provider established outside
    code_of_practice_signatory: bool | None = None  # None: not stated

    def is_studio_author(self, author: str) -> bool:
        return any(same_party(author, name) for name in self.authors)


_FIELDS = ("name", "authors", "own_licenses", "permitted_licenses", "trust_anchor", "contact",
           "authorised_representative", "code_of_practice_signatory")


def load_studio(path: Path) -> Studio:
    """The studio file; a missing file declares nothing (no image is then own work)."""
    if not path.exists():
        return Studio()
    raw = read_yaml_mapping(path, "studio file")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path.name}: unknown field(s) {unknown}; expected "
                         f"{', '.join(_FIELDS)}")
    permitted = raw.get("permitted_licenses") or {}
    if not isinstance(permitted, dict) or not all(str(v).strip() for v in permitted.values()):
        raise ValueError(f"{path.name}: permitted_licenses maps a licence id to where its terms "
                         "allow AI training (e.g. 'agreement of 2025-03-01, clause 4')")
    return Studio(name=str(raw.get("name") or ""), authors=_names(raw, "authors", path),
                  own_licenses=_names(raw, "own_licenses", path),
                  permitted_licenses={str(k): str(v) for k, v in permitted.items()},
                  declared=True, trust_anchor=str(raw.get("trust_anchor") or ""),
                  contact=str(raw.get("contact") or ""),
                  authorised_representative=str(raw.get("authorised_representative") or ""),
                  code_of_practice_signatory=_yes_no(raw, "code_of_practice_signatory", path))


def _yes_no(raw: dict, key: str, path: Path) -> bool | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{path.name}: {key} is true or false, not {value!r}")
    return value


def _names(raw: dict, key: str, path: Path) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{path.name}: {key} must be a list")
    return tuple(str(v).strip() for v in value if str(v).strip())


# Legal-form suffixes: "Cellula Studio Ltd" and "Cellula Studio GmbH & Co. KG" are
# "Cellula Studio"; compared after dots are dropped ("S.A.R.L." -> "sarl").
LEGAL_FORMS = frozenset((
    "ltd", "limited", "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp",
    "lp", "plc", "pllc", "pc", "pty", "pte", "gmbh", "mbh", "ag", "kg", "ohg", "ug", "ev", "gbr",
    "sa", "sas", "sarl", "srl", "spa", "sl", "slu", "sc", "bv", "nv", "vof", "oy", "oyj", "ab",
    "as", "asa", "aps", "kk", "kft", "sro", "zrt"))
_AND = frozenset({"&", "and", "und", "et"})


def _name_words(text: str) -> list[str]:
    words = re.sub(r"[^\w&]+", " ", text.casefold().replace(".", "")).split()
    while len(words) > 1 and (words[-1] in LEGAL_FORMS or words[-1] in _AND):
        words.pop()
    return words


def same_party(a: str, b: str) -> bool:
    """Two names for one party: the same words (ignoring case and punctuation), either
    optionally followed by a legal-form suffix. "Cellula Studio Ltd" is "Cellula Studio";
    "Studio Nightshade Inc" and "Other Studio" are not "Studio"."""
    a_words, b_words = _name_words(a), _name_words(b)
    return bool(a_words) and a_words == b_words
