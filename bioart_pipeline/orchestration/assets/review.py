"""release_review: a person's sign-off on the current XY evaluation, recorded from the UI."""


import dataclasses
from typing import Literal

import dagster as dg
from pydantic import Field, create_model, field_validator

from bioart_pipeline.common.files import sha256_json
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions
from bioart_pipeline.orchestration.resources import StudioData
from bioart_pipeline.release.review import (
    ANSWERS,
    CHECKLIST,
    UNCHECKED,
    draft_review,
    human_only_base,
    latest_review,
    record_review,
)
from bioart_pipeline.training.checkpoints import checkpoint_labels, checkpoint_table

RECOMMENDED = "recommended"
# Set by `bioart demo` on its release run: the review it records is labelled automated, only
# releases LoRAs on the built-in model, and never replaces a review already recorded.
DEMO_TAG = "bioart/demo_review"
Answer = Literal[ANSWERS]  # type: ignore[valid-type]  # one list for the form and the record

# One launchpad field per checklist item, pre-filled 'not checked', with the item's criteria as
# its description: a misspelt item or answer is a launchpad error, not a silent extra key.
ChecklistAnswers = create_model(
    "ChecklistAnswers", __base__=dg.Config,
    **{item: (Answer, Field(UNCHECKED, description=criteria))
       for item, criteria in CHECKLIST.items()})


class ReviewConfig(dg.Config):
    """The review form: the launchpad marks a missing reviewer or decision, a decision other
    than approve/reject, and a checklist item or answer it does not know."""

    reviewer: str = Field(description="Your name, as it goes into the release record.")
    decision: Literal["approve", "reject"] = Field(
        description="approve: this checkpoint and weight may be released; reject: retrain.")
    checkpoint: str = Field(RECOMMENDED, description=(
        "The column of the XY grid you approve, e.g. 'epoch 10'; 'recommended': the framed "
        "cell's."))
    weight: float | None = Field(None, description=(
        "The row of the XY grid (LoRA weight), e.g. 0.8; leave out for the framed cell's."))
    answers: ChecklistAnswers = Field(  # type: ignore[valid-type]
        default_factory=ChecklistAnswers, description=(
            f"The anatomical checklist, one answer per item: {' | '.join(ANSWERS)}. An "
            "approval answers every item."))
    notes: str = Field("", description="Anything the next reviewer or a lawyer should know.")

    @field_validator("reviewer")
    @classmethod
    def _named(cls, reviewer: str) -> str:
        if not reviewer.strip():
            raise ValueError("type your name: a review without a reviewer is not recorded")
        return reviewer.strip()


@dg.asset(partitions_def=lora_partitions, group_name=PIPELINE_GROUP, kinds={"json"},
          deps=["xy_plot_evaluation", "lora_checkpoints"])
def release_review(context: dg.AssetExecutionContext, config: ReviewConfig,
                   studio: StudioData) -> dg.MaterializeResult:
    """A person's review of the current XY evaluation: which checkpoint and weight they approve
    (or reject), with the anatomical checklist.

    To record one: open this asset, click the small arrow beside **Materialize** and choose
    **Open launchpad**; pick the LoRA partition; in the config, type your `reviewer` name, set
    `decision` to approve or reject and answer each checklist item; then **Materialize**. To
    release in the same run, select release_review and validated_release in the lineage and
    use **Materialize selected**. From a terminal: `bioart review LORA --reviewer NAME
    --approve --answer ITEM=pass ...`."""
    lora, workspace = context.partition_key, studio.workspace
    evaluation, recommendation = current_evaluation(workspace, lora)
    demo = context.run.tags.get(DEMO_TAG) == "true"
    existing = latest_review(workspace.reviews_dir, lora, evaluation)
    if demo and existing is not None:
        context.log.info(f"evaluation {evaluation} was reviewed by {existing.reviewer}; "
                         "the demo records no review over it")
    else:
        _record(context, config, studio, evaluation, recommendation, demo)
    review = latest_review(workspace.reviews_dir, lora, evaluation)
    record = dataclasses.asdict(review)
    return dg.MaterializeResult(
        metadata={"evaluation": evaluation, "reviewer": review.reviewer,
                  "decision": "approve" if review.approved else "reject",
                  "checkpoint": review.checkpoint, "weight": review.weight,
                  "reviewed_at": review.reviewed_at, "demo_review": review.demo,
                  "checklist": dg.MetadataValue.md("\n".join(
                      f"- **{item}**: {review.checklist.get(item, UNCHECKED)}"
                      for item in CHECKLIST)),
                  "notes": review.notes},
        data_version=dg.DataVersion(sha256_json(record)[:16]))


def _record(context: dg.AssetExecutionContext, config: ReviewConfig, studio: StudioData,
            evaluation: str, recommendation: dict, demo: bool) -> None:
    lora, workspace = context.partition_key, studio.workspace
    base = human_only_base(studio.spec(lora))
    if demo and base is not None:
        raise dg.Failure(f"{lora} is trained on {base}, not the built-in model: the demo "
                         "records no review of it; a person reviews it here.")
    checkpoint = None if config.checkpoint == RECOMMENDED else config.checkpoint
    try:
        path = record_review(
            workspace.reviews_dir,
            draft_review(lora, evaluation, recommendation, config.reviewer,
                         config.decision == "approve", checkpoint, config.weight,
                         config.answers.model_dump(), config.notes, demo=demo),
            checkpoint_labels(checkpoint_table(workspace, lora)),
            studio.spec(lora).evaluation.weights)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(f"review of evaluation {evaluation} recorded: {path.name}")
