"""Licence sign-offs: a person's record that images whose licence "needs sign-off" (share-alike,
an embedded notice that contradicts the sidecar for internal use, a file that declares a model
made it) may train a LoRA.

A sign-off names who signed, when, a note, and each image by path and content hash with the
reason it needed signing: an edited file is no longer signed. Unsigned images stay out of
training. Records are kept per LoRA under outputs/signoffs/<lora>/ and are copied into each
release that used them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bioart_pipeline.common.files import atomic_write_json, read_json
from bioart_pipeline.common.paths import signoff_files


@dataclass(frozen=True)
class SignOff:
    lora: str
    signer: str
    note: str
    images: dict[str, str] = field(default_factory=dict)  # path -> source sha256
    signed_at: str = ""
    # path -> the verdict's reason as the signer saw it: what exactly was signed off ("the
    # file declares a model made it ...")
    reasons: dict[str, str] = field(default_factory=dict)

    def covers(self, path: str, sha256: str) -> bool:
        return self.images.get(path) == sha256


def draft_signoff(lora: str, signer: str, note: str, pending: pd.DataFrame,
                  images: list[str] | None = None) -> SignOff:
    """A sign-off of `images` (paths; None: every pending one) among `pending`, the manifest
    rows that await one. Raises ValueError with what is wrong."""
    if not signer.strip():
        raise ValueError("a sign-off needs the signer's name")
    if not note.strip():
        raise ValueError("a sign-off needs a note: why these images may train (e.g. the "
                         "share-alike terms were reviewed with counsel on <date>)")
    waiting = dict(zip(pending["path"], pending["source_sha256"], strict=True))
    chosen = list(waiting) if images is None else images
    unknown = [p for p in chosen if p not in waiting]
    if unknown:
        raise ValueError(f"not awaiting a sign-off in {lora}: {unknown}; awaiting: "
                         f"{sorted(waiting) or 'none'}")
    if not chosen:
        raise ValueError(f"no image of {lora} awaits a sign-off")
    reasons = dict(zip(pending["path"], pending["verdict_reason"], strict=True))
    return SignOff(lora=lora, signer=signer.strip(), note=note.strip(),
                   images={p: waiting[p] for p in chosen},
                   reasons={p: reasons[p] for p in chosen})


def record_signoff(signoffs_dir: Path, signoff: SignOff) -> Path:
    stamped = dataclasses.replace(signoff, signed_at=datetime.now(UTC).isoformat(
        timespec="seconds"))
    # the count keeps two sign-offs within one second apart, and the names in order
    count = len(signoff_files(signoffs_dir, signoff.lora))
    name = f"{count:04d}-{stamped.signed_at.replace(':', '')}"
    return atomic_write_json(signoffs_dir / signoff.lora / f"{name}.json",
                             dataclasses.asdict(stamped))


def load_signoffs(signoffs_dir: Path, lora: str) -> list[SignOff]:
    """Every sign-off recorded for `lora`, oldest first."""
    return [SignOff(**read_json(f)) for f in signoff_files(signoffs_dir, lora)]


def covering(signoffs: list[SignOff], path: str, sha256: str) -> SignOff | None:
    """The newest sign-off of this exact file, if any."""
    return next((s for s in reversed(signoffs) if s.covers(path, sha256)), None)
