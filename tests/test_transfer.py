"""What leaves the studio for a GPU cluster: only ciphertext, authenticated chunk by chunk;
what comes back is recorded only if every file matches what the worker reported."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch

from bioart_pipeline.compute.crypto import (
    KEY_VARIABLE,
    DecryptionError,
    TransferKeyError,
    decrypt_stream,
    encrypt_stream,
    new_key,
    transfer_key,
)
from bioart_pipeline.compute.transfer import (
    INPUTS,
    TransferStore,
    pack_inputs,
    pack_outputs,
    unpack_inputs,
    unpack_outputs,
)
from bioart_pipeline.models.profiles import get_profile, load_pipeline, profile_fingerprint
from bioart_pipeline.specs.presets import PRESETS
from bioart_pipeline.training.data import cache_latents
from bioart_pipeline.training.job import TrainingJob
from tests.conftest import tiny_training_job

SIGNATURES = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv(KEY_VARIABLE, new_key())
    return transfer_key()


def _shipped(job: TrainingJob, tmp_path: Path, key: bytes) -> tuple[bytes, bytes]:
    """(the bytes stored in the transfer store, the same decrypted)."""
    archive = tmp_path / "inputs.tar"
    pack_inputs(job, archive)
    store = TransferStore(str(tmp_path / "store"))
    store.upload(archive, "job1", INPUTS, key)
    stored = (tmp_path / "store" / "job1" / INPUTS).read_bytes()
    plain = io.BytesIO()
    decrypt_stream(io.BytesIO(stored), plain, key)
    return stored, plain.getvalue()


def test_shipped_inputs_hold_no_image_bytes_and_no_caption_text(tmp_path: Path,
                                                                models_dir: Path,
                                                                key: bytes) -> None:
    job = tiny_training_job(tmp_path, models_dir)
    stored, plain = _shipped(job, tmp_path, key)
    captions = {image.caption for image in job.images}
    # Decrypted, the archive holds the images and captions: the checks below could fail.
    assert plain.count(SIGNATURES["PNG"]) == len(job.images)
    assert all(caption.encode() in plain for caption in captions)
    for name, signature in SIGNATURES.items():
        assert signature not in stored, name
    assert not [c for c in captions if c.encode() in stored]
    assert b"trig" not in stored and b"images/" not in stored and b"job.json" not in stored


def test_cached_latents_travel_instead_of_images(tmp_path: Path, models_dir: Path,
                                                 key: bytes) -> None:
    job = tiny_training_job(tmp_path, models_dir)
    pipe = load_pipeline(job.profile, models_dir)
    folder = job.latent_folder(profile_fingerprint(job.profile, models_dir))
    cache_latents(pipe.vae, job.images, folder, torch.device("cpu"))

    archive = tmp_path / "inputs.tar"
    assert pack_inputs(job, archive) == len(job.images)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not [n for n in names if n.startswith("images/")]
    restored = TrainingJob.load(unpack_inputs(archive, tmp_path / "worker", tmp_path / "m"))
    assert [i.caption for i in restored.images] == [i.caption for i in job.images]
    assert restored.latent_cache_dir == str(tmp_path / "worker" / "latents")


@pytest.mark.parametrize(("source", "latents"), [
    ("stabilityai/stable-diffusion-xl-base-1.0", True),  # the cluster downloads the same
    ("/models/juggernautXL.safetensors", False),  # its copy there has another fingerprint
    ("models/juggernautXL.safetensors", False),
    ("~/models/sdxl-base", False),
])
def test_latents_travel_only_where_the_cluster_resolves_the_same_base(source: str,
                                                                      latents: bool) -> None:
    job = TrainingJob(lora="x", profile=get_profile("sdxl", source), preset=PRESETS["style"],
                      images=(), models_dir="", latent_cache_dir="")
    assert job.latents_portable() is latents


@pytest.mark.parametrize("damage", ["flip a byte", "drop the last chunk", "another key"])
def test_altered_or_truncated_ciphertext_is_refused(damage: str, key: bytes) -> None:
    plain = bytes(range(256)) * 40_000  # about 10 MB: three 4 MiB chunks
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), sealed, key)
    data = bytearray(sealed.getvalue())
    use = key
    if damage == "flip a byte":
        data[len(data) // 2] ^= 1
    elif damage == "drop the last chunk":
        data = data[: len(data) - (len(plain) - 2 * 4 * 1024 * 1024) - 16 - 4]
    else:
        use = bytes(32)
    with pytest.raises(DecryptionError):
        decrypt_stream(io.BytesIO(bytes(data)), io.BytesIO(), use)
    restored = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed.getvalue()), restored, key)
    assert restored.getvalue() == plain


def test_missing_or_malformed_key_names_the_variable_never_a_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with pytest.raises(TransferKeyError, match=f"{KEY_VARIABLE} is not set"):
        transfer_key()
    monkeypatch.setenv(KEY_VARIABLE, "not-a-key-but-secret-text")
    with pytest.raises(TransferKeyError) as error:
        transfer_key()
    assert "not-a-key-but-secret-text" not in str(error.value)


def test_returned_outputs_are_recorded_only_when_every_hash_matches(tmp_path: Path) -> None:
    worker_run = tmp_path / "worker_run"
    worker_run.mkdir()
    (worker_run / "epoch_0001.safetensors").write_bytes(b"weights one")
    (worker_run / "report.json").write_text("{}")
    archive = tmp_path / "outputs.tar"
    reported = pack_outputs(worker_run, archive)

    run_dir = tmp_path / "studio" / "run"
    assert set(reported) == {"epoch_0001.safetensors", "report.json"}
    for altered in ({**reported, "epoch_0001.safetensors": "0" * 64},
                    {**reported, "report.json": "0" * 64},
                    {"epoch_0001.safetensors": reported["epoch_0001.safetensors"]}):
        with pytest.raises(ValueError, match="do not match what the worker reported"):
            unpack_outputs(archive, run_dir, altered, "report.json")
        assert not run_dir.exists() and list((tmp_path / "studio").iterdir()) == []

    unpack_outputs(archive, run_dir, reported, "report.json")
    assert (run_dir / "epoch_0001.safetensors").read_bytes() == b"weights one"
    assert (run_dir / "report.json").exists()
