"""What crosses the wire between the studio and a training cluster, and how.

Both sides share a *transfer store*: an S3 or GCS bucket (`s3://bucket/prefix`,
`gs://bucket/prefix`, credentials from the usual AWS_* / GOOGLE_* environment variables) or a
folder both can reach (an absolute path, e.g. NFS). Only ciphertext is ever written there:

    <store>/<job id>/inputs.enc    the training job, its captions, and the cached latents
                                   (or, where the worker cannot reuse them, the images)
    <store>/<job id>/outputs.enc   the finished run folder: checkpoints, report, loss curve

The studio deletes `<store>/<job id>/` once it has the outputs.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from pyarrow import fs

from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.compute.crypto import decrypt_stream, encrypt_stream
from bioart_pipeline.models.profiles import is_local_source, profile_fingerprint
from bioart_pipeline.training.data import latent_cache_folder
from bioart_pipeline.training.job import TrainingJob

INPUTS, OUTPUTS = "inputs.enc", "outputs.enc"
JOB_FILE = "job.json"


class TransferStore:
    def __init__(self, uri: str):
        if "://" not in uri and not os.path.isabs(uri):
            raise ValueError(f"transfer store {uri!r} must be s3://..., gs://... or an "
                             "absolute folder path")
        self.uri = uri
        self.fs, self.root = fs.FileSystem.from_uri(uri)

    def _path(self, job_id: str, name: str) -> str:
        return f"{self.root.rstrip('/')}/{job_id}/{name}"

    def upload(self, plain: Path, job_id: str, name: str, key: bytes) -> int:
        """Encrypt `plain` into the store; returns the bytes stored."""
        self.fs.create_dir(self._path(job_id, ""), recursive=True)
        with plain.open("rb") as source, self.fs.open_output_stream(
                self._path(job_id, name)) as target:
            return encrypt_stream(source, target, key)

    def download(self, job_id: str, name: str, plain: Path, key: bytes) -> int:
        """Decrypt an object of the store into `plain`; returns the plaintext bytes."""
        with self.fs.open_input_stream(self._path(job_id, name)) as source, \
                plain.open("wb") as target:
            return decrypt_stream(source, target, key)

    def remove(self, job_id: str) -> None:
        folder = self._path(job_id, "").rstrip("/")
        if self.fs.get_file_info(folder).type == fs.FileType.Directory:
            self.fs.delete_dir(folder)


def ships_latents(job: TrainingJob) -> bool:
    """Latents are reusable only where the worker computes the same base-model fingerprint:
    the built-in model and hub ids, not a local weights path."""
    return job.profile.is_builtin or not is_local_source(job.profile.source)


def pack_inputs(job: TrainingJob, archive: Path) -> dict[str, int]:
    """A tar of the job (paths made relative) and its latents or images; returns counts."""
    folder = latent_cache_folder(Path(job.latent_cache_dir),
                                 profile_fingerprint(job.profile, Path(job.models_dir)))
    latents = {i.key: folder / f"{i.key}.safetensors" for i in job.images}
    use_latents = ships_latents(job) and all(p.exists() for p in latents.values())
    images = tuple(dataclasses.replace(i, file=f"images/{i.key}.png") for i in job.images)
    portable = dataclasses.replace(job, images=images, models_dir="", latent_cache_dir="latents")
    with tempfile.TemporaryDirectory() as tmp:
        portable.save(Path(tmp) / JOB_FILE)
        with tarfile.open(archive, "w") as tar:
            tar.add(Path(tmp) / JOB_FILE, JOB_FILE)
            for image in job.images:
                if use_latents:
                    tar.add(latents[image.key], f"latents/{folder.name}/{image.key}.safetensors")
                else:
                    tar.add(image.file, f"images/{image.key}.png")
    return {"latents": len(job.images) if use_latents else 0,
            "images": 0 if use_latents else len(job.images)}


def unpack_inputs(archive: Path, workdir: Path, models_dir: Path) -> Path:
    """Extract into `workdir` and return a job file whose paths point there."""
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    job = TrainingJob.load(workdir / JOB_FILE)
    images = tuple(dataclasses.replace(i, file=str(workdir / i.file)) for i in job.images)
    return dataclasses.replace(job, images=images, models_dir=str(models_dir),
                               latent_cache_dir=str(workdir / "latents")).save(
        workdir / JOB_FILE)


def pack_outputs(run_dir: Path, archive: Path) -> dict[str, str]:
    """A tar of the finished run folder's regular files (links, such as wandb's `latest-run`,
    stay behind); returns sha256 per checkpoint file."""
    with tarfile.open(archive, "w") as tar:
        for path in sorted(run_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, path.relative_to(run_dir).as_posix())
    return {p.name: sha256_file(p) for p in sorted(run_dir.glob("epoch_*.safetensors"))}


def unpack_outputs(archive: Path, run_dir: Path, expected: dict[str, str]) -> None:
    """Extract beside `run_dir`, check every checkpoint against the hashes the worker reported,
    and only then move the files into `run_dir`: a partial or altered transfer records nothing."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}.incoming-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        found = {p.name: sha256_file(p) for p in staging.glob("epoch_*.safetensors")}
        if found != expected:
            raise ValueError(f"returned checkpoints do not match what the worker reported: "
                             f"got {sorted(found)}, expected {sorted(expected)}, or a hash "
                             "differs")
        run_dir.mkdir(exist_ok=True)
        report = staging / "report.json"
        for path in sorted(staging.rglob("*")):  # report.json last: it marks a finished run
            if path.is_file() and path != report:
                target = run_dir / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        os.replace(report, run_dir / "report.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
