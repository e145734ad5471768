"""validated_release: the approved checkpoint with its papers, in an immutable folder."""


import dataclasses
import functools
from pathlib import Path

import dagster as dg
from PIL import Image

from bioart_pipeline.common.charts import captioned_strip, markdown_image
from bioart_pipeline.common.files import read_json, read_table, sha256_file
from bioart_pipeline.evaluation.stage import GRID, SCORES, cell_images, current_evaluation
from bioart_pipeline.generation.comfyui import (
    ComfyFiles,
    a1111_infotext,
    checkpoint_file_name,
    comfyui_workflow,
)
from bioart_pipeline.generation.recipe import LoraWeight, Recipe
from bioart_pipeline.licensing.studio import load_studio
from bioart_pipeline.models.profiles import ModelProfile
from bioart_pipeline.orchestration.assets.licensing import ATTRIBUTION
from bioart_pipeline.orchestration.gates import GATES, release_gates
from bioart_pipeline.orchestration.metadata import data_version, path_value
from bioart_pipeline.orchestration.partitions import PIPELINE_GROUP, lora_partitions
from bioart_pipeline.orchestration.resources import ReleaseSigning, StudioData
from bioart_pipeline.portfolio.changes import INPUTS_FILE
from bioart_pipeline.release.bundle import SUMS, ReleaseInputs, publish
from bioart_pipeline.release.model_card import LIMITATIONS, model_card
from bioart_pipeline.release.review import Review, latest_review
from bioart_pipeline.release.sbom import SbomInputs
from bioart_pipeline.release.training_summary import SummaryHeader, training_summary
from bioart_pipeline.specs import LoraSpec
from bioart_pipeline.training.checkpoints import (
    checkpoint_labels,
    checkpoint_table,
    trained_profile,
)
from bioart_pipeline.training.export import spec_metadata
from bioart_pipeline.training.job import REPORT

UPSTREAM = ("raw_portfolio", "preprocessed_images", "captions", "license_manifest",
            "lora_checkpoints", "xy_plot_evaluation", "release_review")


@dg.asset(partitions_def=lora_partitions, group_name=PIPELINE_GROUP, kinds={"safetensors"},
          deps=["release_review", "xy_plot_evaluation", "license_manifest",
                "lora_checkpoints", "raw_portfolio"])
def validated_release(context: dg.AssetExecutionContext, studio: StudioData,
                      signing: ReleaseSigning) -> dg.MaterializeResult:
    """The reviewed checkpoint as `{project}_{subject}_{rank}_{epoch}.safetensors` with its
    model card, manifest, attribution, XY grid, config, review and SHA256SUMS, in a new
    read-only folder. Made only while the three gates pass (licences, recommendation, a
    person's approval); its page shows them, the review, the approved cell and the card."""
    spec = studio.spec(context.partition_key)
    workspace = studio.workspace
    # The blocking checks stop this in a run that includes their assets; re-reading the
    # gates covers a release materialized on its own.
    gates = release_gates(studio, spec.name)
    failed = [result.description for result in gates.values() if not result.passed]
    if failed:
        raise dg.Failure("; ".join(failed))
    evaluation, recommendation = current_evaluation(workspace, spec.name)
    review = latest_review(workspace.reviews_dir, spec.name, evaluation)
    checkpoints = checkpoint_table(workspace, spec.name)
    row = checkpoints.iloc[checkpoint_labels(checkpoints).index(review.checkpoint)]
    manifest_file = workspace.table("license_manifest", spec.name)
    manifest_dir = manifest_file.parent
    eval_dir = workspace.stage_dir("xy_plot_evaluation", spec.name) / evaluation
    profile = trained_profile(spec, Path(row["file"]))
    report = read_json(Path(row["file"]).parent / REPORT)
    stem = spec.release_stem(int(row["epoch"]))
    lora_name = f"{stem}.safetensors"
    draw = _approved_recipe(spec, profile, lora_name, review.weight)
    credentials = signing.credentials(workspace, spec.author)
    if credentials.test:
        context.log.warning("signing with a local test certificate (set BIOART_SIGNING_KEY and "
                            "BIOART_SIGNING_CERT for the studio's own); the release says so")
    cells = cell_images(eval_dir, review.checkpoint, review.weight)
    manifest = read_table(manifest_file)
    card = model_card(
        title=f"{spec.project} {spec.subject}", spec_type=spec.type, trigger=spec.trigger,
        release_license=spec.release_license,
        base_model=profile.pinned_source,
        base_model_license=profile.base_model_license,
        base_model_origin=profile.base_model_origin, family=profile.family,
        intended_use=spec.intended_use, recommendation=recommendation, review=review,
        manifest=manifest, epoch=int(row["epoch"]),
        rank=spec.training.rank, alpha=spec.training.alpha, a1111=a1111_infotext(*draw),
        lora_file=lora_name, embedding=" ".join(draw[1].embeddings), samples=len(cells),
        signed_by=credentials.signed_by, timestamp_authority=credentials.tsa_url)
    summary = functools.partial(
        training_summary, SummaryHeader(
            model=stem, spec_type=spec.type, base_model=profile.pinned_source,
            base_model_summary=profile.training_content_reference),
        manifest, load_studio(workspace.studio_file))
    folder, created = publish(workspace.releases_dir, ReleaseInputs(
        lora=spec.name, stem=stem,
        checkpoint_file=Path(row["file"]), manifest_file=manifest_file,
        attribution_file=manifest_dir / ATTRIBUTION, grid_file=eval_dir / GRID,
        scores_file=eval_dir / SCORES,
        training_config={"preset": spec.training.to_dict(),
                         "profile": dataclasses.asdict(profile),
                         "base_model_fingerprint": report["base_model"],
                         "training_run": {k: v for k, v in report.items() if k != "losses"}},
        review=review, recommendation=recommendation, model_card=card,
        export_metadata=spec_metadata(spec), comfyui_workflow=comfyui_workflow(*draw),
        training_summary=summary,
        sbom=_sbom_inputs(spec, profile), sample_files=tuple(path for _, path in cells),
        credentials=credentials,
        dagster_runs=_upstream_runs(context, spec.name),
        inputs_fingerprint=read_json(workspace.stage_dir("raw_portfolio", spec.name)
                                     / INPUTS_FILE)["fingerprint"]))
    context.log.info(f"release {'written' if created else 'unchanged'}: "
                     f"{workspace.display_path(folder)}")
    lora_file = folder / lora_name
    return dg.MaterializeResult(
        metadata={"release_folder": path_value(workspace, folder),
                  "lora_file": path_value(workspace, lora_file),
                  "new_version": created, "signed_by": credentials.signed_by,
                  "gates": dg.MetadataValue.md(_gates_md(gates)),
                  "review": dg.MetadataValue.md(_review_md(review, recommendation)),
                  "approved_cell": dg.MetadataValue.md(_cell_md(cells, review)),
                  "model_card": dg.MetadataValue.md(card),
                  "checkpoint": review.checkpoint, "weight": review.weight,
                  "reviewer": review.reviewer, "demo_review": review.demo,
                  "upstream_data_versions": dg.MetadataValue.json({
                      stage: data_version(path) for stage, path in workspace.tables(
                          spec.name, "license_manifest", "lora_checkpoints",
                          "xy_plot_evaluation").items()})},
        data_version=dg.DataVersion(sha256_file(folder / SUMS)[:16]),
    )


def _gates_md(gates: dict[str, dg.AssetCheckResult]) -> str:
    """One line per gate (a list wraps in the UI's narrow column, a table would not): its
    verdict, a link to the check's page, what it found."""
    return "\n".join(
        f"- **{'passed' if result.passed else 'FAILED'}** "
        f"[{name}](/assets/{GATES[name][0]}?view=checks) on {GATES[name][0]}: "
        f"{result.description or ''}"
        for name, result in gates.items())


def _review_md(review: Review, recommendation: dict) -> str:
    answered = ", ".join(f"{item}: {answer}" for item, answer in review.checklist.items())
    recommended = (f"{recommendation['checkpoint']} at weight {recommendation['weight']}")
    return "\n".join([
        f"- **Decision**: {'approve' if review.approved else 'reject'} by **{review.reviewer}** "
        f"on {review.reviewed_at}" + (" (automated demo review)" if review.demo else ""),
        f"- **Approved**: {review.checkpoint} at weight {review.weight} "
        f"(recommended: {recommended})",
        f"- **Checklist**: {answered or '-'}",
        f"- **Notes**: {review.notes or '-'}"])


def _cell_md(cells: list[tuple[str, Path]], review: Review) -> str:
    """The approved grid cell, one image per prompt, each under its prompt."""
    if not cells:
        return f"_weight {review.weight} is not a row of the XY grid: no image of it_"
    images = []
    for _, path in cells:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    strip = captioned_strip(images, [prompt for prompt, _ in cells], 256)
    return markdown_image(strip, f"{review.checkpoint} at weight {review.weight}",
                          max_side=1280)


def _approved_recipe(spec: LoraSpec, profile: ModelProfile, lora_file: str, weight: float
                     ) -> tuple[Recipe, ComfyFiles]:
    """The XY plot's first prompt and seed at the approved weight, for ComfyUI and A1111."""
    ev = spec.evaluation
    recipe = Recipe(prompt=spec.validation_prompts[0], seed=ev.seeds[0], steps=ev.steps,
                    guidance_scale=ev.guidance_scale, width=profile.resolution,
                    height=profile.resolution, loras=(LoraWeight(spec.name, weight),),
                    true_cfg_scale=ev.true_cfg_scale)
    files = ComfyFiles(checkpoint=checkpoint_file_name(profile.source),
                       loras={spec.name: lora_file},
                       embeddings=(spec.trigger,) if spec.training.pivotal_tokens else (),
                       family=profile.architecture)
    return recipe, files


def _sbom_inputs(spec: LoraSpec, profile: ModelProfile) -> SbomInputs:
    return SbomInputs(
        supplier=spec.author, base_model=profile.pinned_source,
        base_model_license=profile.base_model_license, release_license=spec.release_license,
        spec_type=spec.type, trigger=spec.trigger, intended_use=spec.intended_use,
        hyperparameters={k: str(v) for k, v in spec.training.to_dict().items()},
        limitations=" ".join(LIMITATIONS))


def _upstream_runs(context: dg.AssetExecutionContext, partition: str) -> dict[str, str]:
    runs = {}
    for name in UPSTREAM:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name), asset_partitions=[partition]),
            limit=1).records
        if records:
            runs[name] = records[0].run_id
    runs["validated_release"] = context.run_id
    return runs
