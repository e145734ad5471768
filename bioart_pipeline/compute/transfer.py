"""What crosses the wire between the studio and a GPU cluster, and how.

Both sides share a *transfer store*: an S3 or GCS bucket (`s3://bucket/prefix`,
`gs://bucket/prefix`, credentials from the usual AWS_* / GOOGLE_* environment variables) or a
folder both can reach (an absolute path, e.g. NFS). Only ciphertext is ever written there:

    <store>/<job id>/inputs.enc    the job file and what it ships: for training the cached
                                   latents (or the images), for the XY plot the checkpoints
                                   and training images, for captioning the images
    <store>/<job id>/outputs.enc   the finished output folder (checkpoints and report, XY
                                   images and scores, or captions), every file's sha256
                                   reported by the worker and checked on arrival

The studio deletes `<store>/<job id>/` once it has the outputs.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from pyarrow import fs

from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.compute.crypto import decrypt_stream, encrypt_stream
from bioart_pipeline.compute.jobs import GpuJob, load_job, save_job

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


def pack_inputs(job: GpuJob, archive: Path) -> int:
    """A tar of the job (paths made relative) and the files it ships; returns their count."""
    portable, files = job.shipment()
    with tempfile.TemporaryDirectory() as tmp:
        save_job(portable, Path(tmp) / JOB_FILE)
        with tarfile.open(archive, "w") as tar:
            tar.add(Path(tmp) / JOB_FILE, JOB_FILE)
            for name, path in files.items():
                tar.add(path, name)
    return len(files)


def unpack_inputs(archive: Path, workdir: Path, models_dir: Path) -> Path:
    """Extract into `workdir` and return a job file whose paths point there."""
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    job = load_job(workdir / JOB_FILE)
    return save_job(job.unpacked(workdir, models_dir), workdir / JOB_FILE)


def pack_outputs(out_dir: Path, archive: Path) -> dict[str, str]:
    """A tar of the finished output folder's regular files (links, such as wandb's
    `latest-run`, stay behind); returns the sha256 of every file by its path in the tar."""
    hashes = {}
    with tarfile.open(archive, "w") as tar:
        for path in sorted(out_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                name = path.relative_to(out_dir).as_posix()
                tar.add(path, name)
                hashes[name] = sha256_file(path)
    return hashes


def unpack_outputs(archive: Path, out_dir: Path, expected: dict[str, str], done_file: str
                   ) -> None:
    """Extract beside `out_dir`, check every file against the hashes the worker reported, and
    only then move them into `out_dir`, `done_file` last: a partial or altered transfer
    records nothing."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.incoming-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        found = {p.relative_to(staging).as_posix(): sha256_file(p)
                 for p in sorted(staging.rglob("*")) if p.is_file()}
        if found != expected:
            differ = sorted(k for k in found.keys() | expected.keys()
                            if found.get(k) != expected.get(k))
            raise ValueError(f"returned outputs do not match what the worker reported: "
                             f"{differ[:5]} missing, unexpected or altered")
        if done_file not in found:
            raise ValueError(f"the worker returned no {done_file}: its job did not finish")
        out_dir.mkdir(exist_ok=True)
        done = staging / done_file
        for path in sorted(staging.rglob("*")):
            if path.is_file() and path != done:
                target = out_dir / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        os.replace(done, out_dir / done_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
