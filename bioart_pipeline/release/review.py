"""Human review records: who approved which checkpoint and weight, with the anatomy checklist."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bioart_pipeline.common.files import atomic_write_json, read_json

if TYPE_CHECKING:
    from bioart_pipeline.specs import LoraSpec

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
ANSWERS = ("pass", "fail", "not shown", "not checked")
HOW_TO_REVIEW = ("in the Dagster UI, open the asset release_review, click the arrow beside "
                 "Materialize, Open launchpad, pick the partition {lora}, fill in reviewer, "
                 "decision and the checklist answers, and Materialize; or run `bioart review "
                 "{lora} --reviewer NAME --approve --answer ITEM=pass ...`.")
UNCHECKED = "not checked"  # the form's pre-filled answer; an approval answers every item


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

    def problems(self, checkpoints: list[str], weights: tuple[float, ...]) -> list[str]:
        """What is wrong with this review of a grid of `checkpoints` x `weights`."""
        out = [f"unknown checklist item {k!r}" for k in self.checklist if k not in CHECKLIST]
        if self.checkpoint not in checkpoints:
            out.append(f"checkpoint {self.checkpoint!r} is not one of this evaluation's: "
                       f"{', '.join(checkpoints)}")
        if self.approved and self.weight not in weights:
            out.append(f"weight {self.weight} is not a row of the XY grid: approve one you have "
                       f"seen ({', '.join(map(str, weights))})")
        out += [f"{k}: answer must be one of {ANSWERS}" for k, v in self.checklist.items()
                if v not in ANSWERS]
        if self.approved and any(v == "fail" for v in self.checklist.values()):
            out.append("a review that fails a checklist item cannot approve the release")
        unchecked = [k for k in CHECKLIST if self.checklist.get(k, UNCHECKED) == UNCHECKED]
        if self.approved and not self.demo and unchecked:
            out.append("an approval answers every checklist item (pass, or 'not shown' when no "
                       f"image shows it); not checked: {', '.join(unchecked)}")
        if not self.reviewer.strip():
            out.append("reviewer name is empty")
        return out


def record_review(reviews_dir: Path, review: Review, checkpoints: list[str],
                  weights: tuple[float, ...]) -> Path:
    """Write the review, or raise ValueError naming every problem with it."""
    problems = review.problems(checkpoints, weights)
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


def draft_review(lora: str, evaluation: str, recommendation: dict, reviewer: str,
                 approved: bool, checkpoint: str | None = None, weight: float | None = None,
                 checklist: dict[str, str] | None = None, notes: str = "", demo: bool = False
                 ) -> Review:
    """A review of `evaluation`; checkpoint and weight default to its recommendation."""
    return Review(lora=lora, evaluation=evaluation, reviewer=reviewer,
                  checkpoint=checkpoint or recommendation["checkpoint"],
                  weight=weight if weight is not None else recommendation["weight"],
                  approved=approved, checklist=dict(checklist or {}), notes=notes, demo=demo)


def human_only_base(spec: LoraSpec) -> str | None:
    """The spec's base model when only a person may release LoRAs trained on it (anything
    but the built-in tiny model); None for the built-in one."""
    profile = spec.model_profile
    return None if profile.is_builtin else profile.source


def release_blocker(review: Review | None, lora: str, evaluation: str,
                    checkpoints: list[str], base_model: str | None = None) -> str | None:
    """Why no release may be made from `evaluation`, or None when a person approved it.
    `base_model`: the spec's base model source when it is not the built-in tiny model, whose
    LoRAs only a person may release (the demo's automated approval is refused for them)."""
    if review is None:
        return (f"{lora}: no review of evaluation {evaluation} yet. Look at the XY grid, then "
                f"record one: {HOW_TO_REVIEW.format(lora=lora)}")
    if not review.approved:
        return (f"{lora}: {review.reviewer} rejected evaluation {evaluation} on "
                f"{review.reviewed_at} (notes: {review.notes or '-'}); retrain or record a new "
                "review.")
    if review.demo and base_model is not None:
        return (f"{lora}: the approval of evaluation {evaluation} was recorded automatically by "
                f"`make demo`, which may only release LoRAs on the built-in tiny model; this one "
                f"is trained on {base_model}. A person must review it: "
                f"{HOW_TO_REVIEW.format(lora=lora)}")
    if review.checkpoint not in checkpoints:
        return f"{lora}: reviewed checkpoint {review.checkpoint!r} is not among {checkpoints}"
    return None
