"""The release folder: immutable once written; a changed input makes a new version.

Contents: the LoRA ({project}_{subject}_{rank}_{epoch}.safetensors, kohya naming, allow-listed
metadata and a provenance pointer), README.md (model card), the license manifest,
ATTRIBUTION.md, the SPDX 3 document, the public training-data summary, the XY grid and
scores, the approved samples, a ComfyUI workflow, the training config, the review, the
signing certificate, SHA256SUMS and its signature (release/signing.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bioart_pipeline.common.files import (
    atomic_dir,
    atomic_write_json,
    read_json,
    read_table,
    sha256_file,
    sha256_json,
)
from bioart_pipeline.generation.comfyui import WORKFLOW
from bioart_pipeline.release.review import Review
from bioart_pipeline.release.sbom import SBOM, SbomInputs, spdx_document
from bioart_pipeline.release.signing import (
    CERTIFICATE,
    SIGNATURE,
    Credentials,
    release_assertions,
    sign_file,
    sign_png,
)
from bioart_pipeline.release.training_summary import SUMMARY
from bioart_pipeline.training.export import ALLOWED_METADATA, read_metadata, write_lora

SUMS = "SHA256SUMS"
FINGERPRINT = ".fingerprint"
# The only files SHA256SUMS does not list: itself and the signature over it. Anything else in
# a release folder that it does not list fails the audit.
UNLISTED = (SUMS, SIGNATURE)
_SUMS_LINE = re.compile(r"([0-9a-f]{64}) [ *]([^/\\]+)")


@dataclass(frozen=True)
class ReleaseInputs:
    lora: str
    stem: str  # file name stem, e.g. cellula_cellstyle_32_10
    checkpoint_file: Path
    manifest_file: Path
    attribution_file: Path
    grid_file: Path
    scores_file: Path
    training_config: dict
    review: Review
    recommendation: dict
    model_card: str
    dagster_runs: dict[str, str]  # asset -> run id of its latest materialization
    inputs_fingerprint: str  # spec + portfolio files as of the scan that fed this release
    # the spec's current title, author, licence, trigger: written over the checkpoint's own
    export_metadata: dict[str, str]
    comfyui_workflow: dict
    # (release id, date placed on the market) -> TRAINING_DATA_SUMMARY.md
    training_summary: Callable[[str, str], str]
    sbom: SbomInputs  # sbom.spdx3.json, written once the LoRA file's hash is known
    sample_files: tuple[Path, ...]  # the approved grid cell, one image per prompt
    credentials: Credentials


def publish(releases_dir: Path, inputs: ReleaseInputs) -> tuple[Path, bool]:
    """Write the next version, or return the latest one if its inputs are identical.
    Returns (folder, created)."""
    lora_dir = releases_dir / inputs.lora
    fingerprint = _fingerprint(inputs)
    versions = existing_versions(lora_dir)
    if versions and (versions[-1] / FINGERPRINT).read_text() == fingerprint:
        return versions[-1], False
    version = f"v{len(versions) + 1}"
    release_id = f"{inputs.lora}-{version}"
    target = lora_dir / version
    with atomic_dir(target) as tmp:
        _write_contents(tmp, inputs, release_id)
        _sign_images(tmp, inputs.credentials, release_id)
        (tmp / FINGERPRINT).write_text(fingerprint)
        _write_sums(tmp)
        (tmp / SIGNATURE).write_bytes(sign_file(tmp / SUMS, inputs.credentials))
        _make_read_only(tmp)
    return target, True


def existing_versions(lora_dir: Path) -> list[Path]:
    found = [p for p in lora_dir.glob("v*") if re.fullmatch(r"v\d+", p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[1:]))


def _fingerprint(inputs: ReleaseInputs) -> str:
    review = dataclasses.asdict(inputs.review)
    return sha256_json([sha256_file(inputs.checkpoint_file), sha256_file(inputs.manifest_file),
                        review, inputs.stem, inputs.model_card, inputs.export_metadata,
                        inputs.comfyui_workflow, inputs.training_summary("", ""),
                        dataclasses.asdict(inputs.sbom), inputs.credentials.chain_pem.decode(),
                        [sha256_file(p) for p in inputs.sample_files]])


def _write_contents(folder: Path, inputs: ReleaseInputs, release_id: str) -> None:
    from safetensors.torch import load_file  # torch, when a release is written

    from bioart_pipeline.generation.embeddings import split_bundle
    from bioart_pipeline.training.pivotal import write_embedding

    manifest_copy = folder / "license_manifest.parquet"
    shutil.copyfile(inputs.manifest_file, manifest_copy)
    # A pivotal-tuning checkpoint's embedding ships as its own file (ComfyUI reads no bundle).
    tensors, embeddings = split_bundle(load_file(str(inputs.checkpoint_file)))
    metadata = {k: v for k, v in read_metadata(inputs.checkpoint_file).items()
                if k in ALLOWED_METADATA and k != "modelspec.hash_sha256"}
    metadata.update({**inputs.export_metadata, "ss_output_name": inputs.stem,
                     "bioart.release_id": release_id,
                     "bioart.manifest_sha256": sha256_file(manifest_copy)})
    lora_file = folder / f"{inputs.stem}.safetensors"
    write_lora(lora_file, tensors, metadata)
    for name, vectors in embeddings.items():
        write_embedding(folder / embedding_file(name), vectors)
    (folder / SBOM).write_text(spdx_document(
        inputs.sbom, release_id, lora_file.name, sha256_file(lora_file),
        read_table(manifest_copy), embeddings={
            embedding_file(n): sha256_file(folder / embedding_file(n)) for n in embeddings}),
        encoding="utf-8")
    shutil.copyfile(inputs.attribution_file, folder / "ATTRIBUTION.md")
    shutil.copyfile(inputs.grid_file, folder / "xy_grid.png")
    for index, sample in enumerate(inputs.sample_files, start=1):
        shutil.copyfile(sample, folder / f"sample_{index}.png")
    (folder / CERTIFICATE).write_bytes(inputs.credentials.chain_pem)
    shutil.copyfile(inputs.scores_file, folder / "xy_scores.parquet")
    atomic_write_json(folder / WORKFLOW, inputs.comfyui_workflow)
    atomic_write_json(folder / "training_config.json", inputs.training_config)
    atomic_write_json(folder / "review.json", dataclasses.asdict(inputs.review))
    atomic_write_json(folder / "release.json", {"release_id": release_id, "lora": inputs.lora,
                                    "lora_file": lora_file.name,
                                    "embedding_files": [embedding_file(n) for n in embeddings],
                                    "signed_by": inputs.credentials.signed_by,
                                    "recommendation": inputs.recommendation,
                                    "dagster_runs": inputs.dagster_runs,
                                    "inputs_fingerprint": inputs.inputs_fingerprint})
    (folder / "README.md").write_text(inputs.model_card, encoding="utf-8")
    placed_on = datetime.datetime.now(datetime.UTC).date().isoformat()
    (folder / SUMMARY).write_text(inputs.training_summary(release_id, placed_on),
                                  encoding="utf-8")


def embedding_file(name: str) -> str:
    """Loaders name an embedding after its file: the trigger word."""
    return f"{name}.safetensors"


def _sign_images(folder: Path, credentials: Credentials, release_id: str) -> None:
    """C2PA on every PNG, binding it to this release's LoRA and training-data summary."""
    lora = folder / load_release_info(folder)["lora_file"]
    claims = {"release_id": release_id, "lora_file": lora.name,
              "lora_sha256": sha256_file(lora),
              "training_data_summary_sha256": sha256_file(folder / SUMMARY)}
    for image in sorted(folder.glob("*.png")):
        sign_png(image, credentials, release_assertions(claims))


def _write_sums(folder: Path) -> None:
    lines = [f"{sha256_file(p)}  {p.name}" for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in UNLISTED]
    (folder / SUMS).write_text("\n".join(lines) + "\n")


def read_sums(folder: Path) -> dict[str, str]:
    """File name -> sha256 as SHA256SUMS lists them (sha256sum's format: '<hex>  <name>');
    a missing file or a line that is not that format raises ValueError naming it."""
    path = folder / SUMS
    if not path.is_file():
        raise ValueError(f"{SUMS} is missing")
    listed = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        match = _SUMS_LINE.fullmatch(line)
        if not match or match[2] in (".", ".."):
            raise ValueError(f"{SUMS} line {number} is not '<sha256>  <file name>': "
                             f"{line[:120]!r}")
        listed[match[2]] = match[1]
    return listed


def verify_sums(folder: Path) -> list[str]:
    """Files whose bytes no longer match SHA256SUMS, that are missing, or that it does not
    list; or why SHA256SUMS itself cannot be read."""
    try:
        listed = read_sums(folder)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: sha256 differs from {SUMS}")
    problems += [f"{p.name}: in the folder but not listed in {SUMS}"
                 for p in sorted(folder.iterdir()) if p.name not in (*listed, *UNLISTED)]
    return problems


def _make_read_only(folder: Path) -> None:
    for path in folder.iterdir():
        os.chmod(path, 0o444)


def load_release_info(folder: Path) -> dict:
    return read_json(folder / "release.json")


def latest_release_info(releases_dir: Path, lora: str) -> dict | None:
    versions = existing_versions(releases_dir / lora)
    return load_release_info(versions[-1]) if versions else None
