"""captions: one caption per usable image, trigger word first, with its origin."""

import shutil
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import pandas as pd

from bioart_pipeline.captioning.assembly import CaptionRules
from bioart_pipeline.captioning.florence import (
    CAPTIONS,
    CaptionerSettings,
    CaptionJob,
    cached_captions,
    store_captions,
)
from bioart_pipeline.captioning.stage import CaptionsMissing, ModelCaptions, caption_images
from bioart_pipeline.captioning.terminology import load_terminology
from bioart_pipeline.common.files import read_json, read_table, sha256_json, write_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.models.clip_tokenizer import MODEL_MAX_LENGTH, clip_token_counter
from bioart_pipeline.orchestration.compute import GpuCompute, gpu_asset
from bioart_pipeline.orchestration.metadata import (
    counts_md,
    path_value,
    stage_result,
    table_preview,
)
from bioart_pipeline.orchestration.resources import CaptionModel, StudioData
from bioart_pipeline.preprocessing.stage import preprocessed_file


def captions_asset(pool: str | None) -> dg.AssetsDefinition:
    """`pool`: the compute resource's (see lora_checkpoints_asset): the captioning model
    runs as a job there."""

    @gpu_asset("captions", pool, ["preprocessed_images"], {"parquet"})
    def captions(context: dg.AssetExecutionContext, studio: StudioData,
                 captioner: CaptionModel, compute: GpuCompute) -> dg.MaterializeResult:
        """Artist sidecar captions, else Florence-2 with the studio's terminology; edits made
        in `edit/` of this output are kept. Trigger word first, tags in a fixed order."""
        return _caption(context, studio, captioner, compute)

    return captions


def _caption(context: dg.AssetExecutionContext, studio: StudioData, captioner: CaptionModel,
             compute: GpuCompute) -> dg.MaterializeResult:
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    terminology = load_terminology(workspace.terminology_file)
    rules = CaptionRules(trigger=spec.trigger, lora_type=spec.type, terminology=terminology,
                         subject_tags=spec.subject_tags, style_tags=spec.style_tags,
                         background=spec.background,
                         count_tokens=clip_token_counter(workspace.models_dir),
                         max_tokens=MODEL_MAX_LENGTH - 2)
    path = workspace.table("captions", spec.name)
    settings = captioner.settings()
    try:
        result = caption_images(
            read_table(workspace.table("preprocessed_images", spec.name)),
            workspace.resolve_input,
            lambda key: preprocessed_file(workspace.cache_dir / "preprocessed", key), rules,
            _model(settings, workspace, context, compute) if settings else None,
            settings.origin if settings else None,
            read_table(path) if path.exists() else None, path.parent)
    except CaptionsMissing as exc:
        raise dg.Failure(str(exc)) from exc
    table = result.table
    for replaced in result.edits.replaced:
        context.log.warning(f"{replaced['path']}: image changed, so its edited caption was "
                            f"replaced; the edit was: {replaced['edited_caption']!r}")
    version = write_table(table, path)
    words = table["caption"].str.split().str.len()
    return stage_result(workspace, path, version, {
        "captions": len(table),
        "origins": counts_md(table["origin"]),
        "model_captioned_now": result.model_captioned,
        "edits_kept": result.edits.kept,
        "edits_replaced": table_preview(pd.DataFrame(result.edits.replaced,
                                                     columns=["path", "edited_caption"]),
                                        ["path", "edited_caption"]),
        "replacements_fired": counts_md(_fired(table)),
        "empty_or_short": table_preview(table[words < 5], ["path", "caption"]),
        # what SDXL's text encoders would never read: cut from descriptions, or an edit too long
        "truncated_captions": int((table["truncated"] != "").sum()),
        "captions_over_the_token_limit": table_preview(
            table[(table["truncated"] != "") | (table["tokens"] > rules.max_tokens)],
            ["path", "tokens", "truncated"]),
        "edit_folder": path_value(workspace, path.parent / "edit"),
        "preview": table_preview(table, ["path", "caption", "origin"], 15),
    }, upstream=workspace.tables(spec.name, "preprocessed_images"))


def _model(settings: CaptionerSettings, workspace: Workspace, context: dg.AssetExecutionContext,
           compute: GpuCompute) -> ModelCaptions:
    """Captions from the cache, and a captioning job on the compute resource for the rest."""
    cache = workspace.cache_dir / "captions"

    def run(files: dict[str, Path]) -> tuple[dict[str, str], int]:
        texts, todo = cached_captions(list(files), settings, cache)
        if todo:
            job = CaptionJob(settings=settings,
                             images=tuple((key, str(files[key])) for key in todo),
                             models_dir=str(workspace.models_dir),
                             placement=compute.placement)
            out_dir = workspace.cache_dir / "caption_jobs" / sha256_json(asdict(job))[:16]
            compute.run(context, job, out_dir)
            fresh = read_json(out_dir / CAPTIONS)
            store_captions(fresh, settings, cache)
            shutil.rmtree(out_dir)  # the captions now live in the cache
            texts.update(fresh)
        context.log.info(f"{len(todo)} image(s) captioned by {settings.model}, "
                         f"{len(files) - len(todo)} from the caption cache")
        return texts, len(todo)

    return run


def _fired(table: pd.DataFrame) -> pd.Series:
    fired = table["replacements"].str.split("; ").explode()
    return fired[fired.astype(bool)] if not fired.empty else fired
