"""release_review: the person's sign-off on the current XY evaluation, recordable from the UI."""


import dataclasses

import dagster as dg
from pydantic import Field

from bioart_pipeline.common.files import sha256_json
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.release.review import (
    ANSWERS,
    CHECKLIST,
    draft_review,
    latest_review,
    record_review,
)

DECISIONS = {"approve": True, "reject": False}


class ReviewConfig(dg.Config):
    """Launchpad fields of a review. With `reviewer` empty nothing new is recorded and the
    latest review of the current evaluation is reported (what scheduled runs do)."""

    reviewer: str = Field("", description="Your name, as it goes into the release record.")
    decision: str = Field("", description="approve or reject")
    checkpoint: str = Field("", description="e.g. 'epoch 10'; empty: the recommended one")
    weight: float | None = Field(None, description="LoRA weight; empty: the recommended one")
    answers: dict[str, str] = Field(
        default_factory=dict,
        description=f"Anatomical checklist, item -> {' | '.join(ANSWERS)}. Items: "
                    + "; ".join(f"{k} ({v})" for k, v in CHECKLIST.items()))
    notes: str = Field("", description="Anything the next reviewer or a lawyer should know.")


@dg.asset(partitions_def=lora_partitions, group_name="release", kinds={"json"},
          deps=["xy_plot_evaluation"])
def release_review(context: dg.AssetExecutionContext, config: ReviewConfig,
                   studio: StudioData) -> dg.MaterializeResult:
    """The human review of the current XY evaluation: who approved which checkpoint and weight,
    with the anatomical checklist. Record one by materializing this asset with a launch config
    (reviewer, decision, checkpoint, weight, answers, notes), or with `bioart review`."""
    lora = context.partition_key
    workspace = studio.workspace
    evaluation, recommendation = current_evaluation(workspace, lora)
    if config.reviewer:
        if config.decision not in DECISIONS:
            raise dg.Failure(f"decision must be one of {list(DECISIONS)}, "
                             f"got {config.decision!r}")
        try:
            path = record_review(workspace.reviews_dir, draft_review(
                lora, evaluation, recommendation, config.reviewer, DECISIONS[config.decision],
                config.checkpoint or None, config.weight, config.answers, config.notes))
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        context.log.info(f"review recorded: {path}")
    review = latest_review(workspace.reviews_dir, lora, evaluation)
    if review is None:
        context.log.warning(f"no review of evaluation {evaluation} yet")
        return dg.MaterializeResult(metadata={"evaluation": evaluation, "reviewed": False},
                                    data_version=dg.DataVersion(f"none-{evaluation}"))
    record = dataclasses.asdict(review)
    return dg.MaterializeResult(
        metadata={"evaluation": evaluation, "reviewed": True, "reviewer": review.reviewer,
                  "decision": "approve" if review.approved else "reject",
                  "checkpoint": review.checkpoint, "weight": review.weight,
                  "reviewed_at": review.reviewed_at, "demo_review": review.demo,
                  "checklist": dg.MetadataValue.json(review.checklist), "notes": review.notes},
        data_version=dg.DataVersion(sha256_json(record)[:16]))
