"""captions: one caption per usable image, trigger word first, with its origin."""

from pathlib import Path

import dagster as dg
import pandas as pd

from bioart_pipeline.captioning.assembly import CaptionRules
from bioart_pipeline.captioning.florence import (
    CaptionerSettings,
    CaptionerUnavailable,
    Florence2Captioner,
    cached_captions,
)
from bioart_pipeline.captioning.stage import CaptionsMissing, ModelCaptions, caption_images
from bioart_pipeline.captioning.terminology import load_terminology
from bioart_pipeline.common.files import read_table, write_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.orchestration.metadata import counts_md, stage_result, table_md
from bioart_pipeline.orchestration.partitions import lora_partitions
from bioart_pipeline.orchestration.resources import CaptionModel, StudioData
from bioart_pipeline.preprocessing.stage import preprocessed_file


@dg.asset(partitions_def=lora_partitions, group_name="data", kinds={"parquet"},
          deps=["preprocessed_images"])
def captions(context: dg.AssetExecutionContext, studio: StudioData,
             captioner: CaptionModel) -> dg.MaterializeResult:
    """Artist sidecar captions, else Florence-2 with the studio's terminology; edits made in
    `edit/` of this output are kept. Trigger word first, tags in a fixed order."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    terminology = load_terminology(workspace.terminology_file)
    rules = CaptionRules(trigger=spec.trigger, lora_type=spec.type, terminology=terminology,
                         subject_tags=spec.subject_tags, style_tags=spec.style_tags,
                         background=spec.background)
    path = workspace.table("captions", spec.name)
    settings = captioner.settings()
    try:
        result = caption_images(
            read_table(workspace.table("preprocessed_images", spec.name)),
            workspace.resolve_input,
            lambda key: preprocessed_file(workspace.cache_dir / "preprocessed", key), rules,
            _model(settings, workspace, context) if settings else None,
            settings.origin if settings else None,
            read_table(path) if path.exists() else None, path.parent)
    except (CaptionsMissing, CaptionerUnavailable) as exc:
        raise dg.Failure(str(exc)) from exc
    table = result.table
    for replaced in result.edits.replaced:
        context.log.warning(f"{replaced['path']}: image changed, so its edited caption was "
                            f"replaced; the edit was: {replaced['edited_caption']!r}")
    version = write_table(table, path)
    words = table["caption"].str.split().str.len()
    return stage_result(path, version, {
        "captions": len(table),
        "origins": counts_md(table["origin"]),
        "model_captioned_now": result.model_captioned,
        "edits_kept": result.edits.kept,
        "edits_replaced": table_md(pd.DataFrame(result.edits.replaced,
                                                columns=["path", "edited_caption"]),
                                   ["path", "edited_caption"]),
        "replacements_fired": counts_md(_fired(table)),
        "empty_or_short": table_md(table[words < 5], ["path", "caption"]),
        "edit_folder": dg.MetadataValue.path(str(path.parent / "edit")),
        "preview": table_md(table, ["path", "caption", "origin"], 15),
    }, upstream=workspace.tables(spec.name, "preprocessed_images"))


def _model(settings: CaptionerSettings, workspace: Workspace, context: dg.AssetExecutionContext
           ) -> ModelCaptions:
    def run(files: dict[str, Path]) -> tuple[dict[str, str], int]:
        def load() -> Florence2Captioner:
            context.log.info(f"loading {settings.model} for {settings.task}")
            return Florence2Captioner(settings, workspace.models_dir)

        texts, fresh = cached_captions(files, settings, workspace.cache_dir / "captions", load)
        context.log.info(f"{fresh} image(s) captioned by {settings.model}, "
                         f"{len(files) - fresh} from the caption cache")
        return texts, fresh

    return run


def _fired(table: pd.DataFrame) -> pd.Series:
    fired = table["replacements"].str.split("; ").explode()
    return fired[fired.astype(bool)] if not fired.empty else fired
