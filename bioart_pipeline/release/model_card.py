"""The model card (Hugging Face format): what a user of the LoRA needs, no private paths."""

from __future__ import annotations

import pandas as pd
import yaml

from bioart_pipeline.generation.comfyui import WORKFLOW
from bioart_pipeline.models.families import Family
from bioart_pipeline.release.bundle import embedding_file
from bioart_pipeline.release.review import Review
from bioart_pipeline.release.sbom import SBOM
from bioart_pipeline.release.signing import CERTIFICATE, SIGNATURE
from bioart_pipeline.release.training_summary import SUMMARY

# Which tools read the file as is, by the family's key naming (training/export.py).
LOADERS = {
    "kohya": "Loads in ComfyUI and Automatic1111 as is (kohya key naming, alpha per module).",
    "diffusers": ("Loads in ComfyUI, Forge and diffusers as is (diffusers key naming, "
                  "`transformer.*`, alpha folded into the weights): put it in ComfyUI's "
                  "`models/loras`; the workflow expects Flux's transformer, CLIP-L, T5 and VAE "
                  "files under their usual names."),
}
LIMITATIONS = ("Anatomical accuracy is not guaranteed: check outputs against the review "
               "checklist.",
               "Style may bleed into prompts without the trigger word at high weights.")


def model_card(*, title: str, spec_type: str, trigger: str, release_license: str,
               base_model: str, base_model_license: str, base_model_origin: str,
               family: Family, intended_use: str,
               recommendation: dict, review: Review, manifest: pd.DataFrame, epoch: int,
               rank: int, alpha: float, a1111: str, lora_file: str, embedding: str,
               samples: int, signed_by: str, timestamp_authority: str) -> str:
    """`a1111`: the approved settings as A1111 generation parameters (generation/comfyui.py);
    `embedding`: the pivotal-tuning embedding's name ("" without one);
    `timestamp_authority`: the RFC 3161 authority the C2PA signatures were stamped by ("")."""
    included = manifest[manifest["included"]]
    front = {
        "license": "other", "license_name": release_license, "base_model": base_model,
        "tags": ["lora", family.hub_tag, "scientific-illustration", spec_type],
        "instance_prompt": trigger, "library_name": "diffusers",
    }
    licenses = included["license"].value_counts().to_dict()
    lines = [
        "---", yaml.safe_dump(front, sort_keys=True).strip(), "---", "",
        f"# {title}", "",
        f"A {spec_type} LoRA (rank {rank}, alpha {alpha:g}, epoch {epoch}) for {base_model} "
        f"({family.title}).",
        "", "## Use", "",
        f"- Trigger word: `{trigger}` (put it first in the prompt).",
        *(_embedding_use(embedding, family) if embedding else []),
        f"- Recommended weight: {review.weight:g} "
        f"(usable range {recommendation.get('weight_range')}).",
        f"- Intended use: {intended_use}.",
        f"- {LOADERS[family.export_format]} `comfyui_workflow.json` draws with it at this "
        "weight and the XY plot's sampler settings (ComfyUI: Workflow, Open, or drop the file "
        f"on the canvas); in {'Forge' if family.name == 'flux' else 'A1111'}, paste:", "",
        "```", a1111, "```", "",
        "The XY plot the weight was chosen from (columns: base and checkpoints, rows: "
        "weights, the recommended cell framed):", "",
        "![XY grid](xy_grid.png)", "",
        "## Training data", "",
        f"{len(included)} images; licenses: "
        + ", ".join(f"{k} ({v})" for k, v in sorted(licenses.items())) + ".",
        *_model_made(included),
        "Every image, its hash, license, author and source: `license_manifest.parquet`; "
        "credits: `ATTRIBUTION.md`.", "",
        "## Base model", "",
        f"- Source: {base_model}.",
        f"- Licence: {base_model_license}.",
        *([f"- Origin: {base_model_origin}."] if base_model_origin else []), "",
        *_signoffs(included),
        "## Review", "",
        f"Reviewed by {review.reviewer} on {review.reviewed_at}"
        + (" (AUTOMATED DEMO REVIEW, not a human sign-off)" if review.demo else "") + ": "
        f"{review.checkpoint} at weight {review.weight:g}. Notes: {review.notes or '-'}", "",
        "## Limitations", "",
        f"- Base model license: {base_model_license}; it applies to every use of this LoRA.",
        *(f"- {limit}" for limit in LIMITATIONS), "",
        "## Files", "",
        *[f"- `{name}`: {what}" for name, what in _files(lora_file, embedding, samples)], "",
        f"Signed by {signed_by}: `{SIGNATURE}` is a signature over `SHA256SUMS` with the key of "
        f"`{CERTIFICATE}`, and every PNG carries a C2PA manifest naming this LoRA's sha256. "
        + (f"Each C2PA signature carries an RFC 3161 timestamp from {timestamp_authority}, so "
           "it stays verifiable after the certificate expires."
           if timestamp_authority else
           "No trusted timestamp: no time-stamping authority was configured, so the "
           "signatures can be checked only while the signing certificate is valid."),
    ]
    return "\n".join(lines) + "\n"


def _embedding_use(name: str, family: Family) -> list[str]:
    keys = " and ".join(f"`{k}`" for k in family.embedding_keys.values())
    return [
        f"- The trigger is an embedding trained with the LoRA (pivotal tuning), "
        f"`{embedding_file(name)}` ({keys}): load both. ComfyUI: put it in "
        f"`models/embeddings` and write `embedding:{name}` in the prompt (the workflow "
        f"does). A1111: put it in `embeddings` and write `{name}` (its file name) as below. "
        "diffusers: "
        f"`load_textual_inversion(file[key], token=\"{name}\", text_encoder=..., "
        "tokenizer=...)` for each key and its text encoder."]


def _files(lora_file: str, embedding: str, samples: int) -> list[tuple[str, str]]:
    return [
        (lora_file, "the LoRA (loads in ComfyUI, diffusers and A1111 or, for Flux, Forge)"),
        *([(embedding_file(embedding), "the trigger's embedding, trained with the LoRA")]
          if embedding else []),
        ("README.md", "this model card"),
        (WORKFLOW, "a ComfyUI workflow at the approved weight"),
        ("xy_grid.png", "the XY plot the weight was chosen from (C2PA-signed)"),
        *((f"sample_{i}.png", f"the approved cell for prompt {i} (C2PA-signed)")
          for i in range(1, samples + 1)),
        ("xy_scores.parquet", "the XY plot's measures per cell"),
        (SUMMARY, "the public summary of the training content"),
        (SBOM, "SPDX 3.0.1: this LoRA, its base model and every training "
                            "image with hash and licence"),
        ("ATTRIBUTION.md", "credits for every third-party image"),
        ("license_manifest.parquet", "every training image: hash, licence, author, verdict"),
        ("training_config.json", "preset, base model and training run"),
        ("review.json", "who approved which checkpoint and weight, with the checklist"),
        ("release.json", "release id, recommendation, the Dagster runs that made it"),
        ("SHA256SUMS", "the sha256 of every file above"),
        (SIGNATURE, "the signature over SHA256SUMS"),
        (CERTIFICATE, "the certificate chain that signed it"),
    ]


def _model_made(included: pd.DataFrame) -> list[str]:
    """How many training images declare in their metadata that a model made them (each was
    signed off: the licence gate lets none train otherwise)."""
    made = included[included.get("model_made", pd.Series("", index=included.index)) != ""]
    if made.empty:
        return []
    return [f"{len(made)} of them declare in their metadata that a model made them "
            "(C2PA or IPTC digital source type, or a generator's PNG chunk); each was signed "
            "off by a person before it trained."]


def _signoffs(included: pd.DataFrame) -> list[str]:
    """Who signed off images whose licence needed it (counts only: no dataset listing)."""
    signed = included[included["signed_off_by"] != ""]
    if signed.empty:
        return []
    lines = ["## Licence sign-offs", ""]
    for (signer, at, note), rows in signed.groupby(["signed_off_by", "signed_off_at",
                                                    "signoff_note"]):
        lines.append(f"- {signer} on {at}: {len(rows)} image(s) under "
                     f"{', '.join(sorted(set(rows['license'])))}. Note: {note}")
    return [*lines, "Each signed image is marked in `license_manifest.parquet`.", ""]
