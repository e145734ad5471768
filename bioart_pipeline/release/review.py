"""Human review records: who approved which checkpoint and weight, with the anatomy checklist."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bioart_pipeline.common.files import atomic_write_json, read_json

# shared/domain.md's anatomical review checklist: question id -> what the reviewer confirms.
CHECKLIST = {
    "mitochondria": "cristae connect to the inner membrane, matrix visible, oblong shape",
    "cell_membrane": "even thickness, bilayer in close-ups",
    "nucleus": "envelope with pores, nucleolus, chromatin texture",
    "endoplasmic_reticulum": "rough ER has ribosomes, smooth ER none, continuous sheets",
    "golgi": "stacked cisternae with cis (convex) and trans (concave) faces",
    "dna": "right-handed helix",
    "colours": "conventional palette (nucleus blue/purple, mitochondria red/orange, ...)",
}
ANSWERS = ("pass", "fail", "not shown")


@dataclass(frozen=True)
class Review:
    lora: str
    evaluation: str  # the evaluation key the reviewer looked at
    reviewer: str
    checkpoint: str  # e.g. "epoch 10"
    weight: float
    approved: bool
    checklist: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    demo: bool = False  # recorded by `make demo`, not by a person
    reviewed_at: str = ""

    def problems(self) -> list[str]:
        out = [f"unknown checklist item {k!r}" for k in self.checklist if k not in CHECKLIST]
        out += [f"{k}: answer must be one of {ANSWERS}" for k, v in self.checklist.items()
                if v not in ANSWERS]
        if self.approved and any(v == "fail" for v in self.checklist.values()):
            out.append("a review that fails a checklist item cannot approve the release")
        if not self.reviewer.strip():
            out.append("reviewer name is empty")
        return out


def record_review(reviews_dir: Path, review: Review) -> Path:
    problems = review.problems()
    if problems:
        raise ValueError("invalid review: " + "; ".join(problems))
    stamped = dataclasses.replace(review, reviewed_at=datetime.now(UTC).isoformat(
        timespec="seconds"))
    name = f"{stamped.evaluation}-{stamped.reviewed_at.replace(':', '')}.json"
    return atomic_write_json(reviews_dir / review.lora / name, dataclasses.asdict(stamped))


def latest_review(reviews_dir: Path, lora: str, evaluation: str) -> Review | None:
    """The newest review of exactly this evaluation (a new evaluation needs a new review)."""
    files = sorted((reviews_dir / lora).glob(f"{evaluation}-*.json"))
    return Review(**read_json(files[-1])) if files else None
