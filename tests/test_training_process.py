"""The training entrypoint as a process: resuming after a kill, stopping on divergence."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from tests.conftest import make_data_dir, quick_spec, tiny_training_job

EPOCHS = 6


def _job(tmp_path: Path, models_dir: Path, **overrides) -> Path:
    job = tiny_training_job(tmp_path, models_dir, epochs=EPOCHS, **overrides)
    return job.save(tmp_path / "job.json")


@pytest.fixture
def job_file(tmp_path: Path, models_dir: Path) -> Path:
    return _job(tmp_path, models_dir)


def _train(job_file: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bioart_pipeline.compute.entrypoint", str(job_file),
         str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def test_killed_run_resumes_with_right_step_epoch_and_schedule(job_file: Path,
                                                                tmp_path: Path) -> None:
    reference = tmp_path / "uninterrupted"
    _finish(_train(job_file, reference))

    resumed = tmp_path / "killed"
    process = _train(job_file, resumed)
    state = resumed / "state" / "state.json"
    while not state.exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = json.loads(state.read_text())["epoch"]
    assert 1 <= killed_after < EPOCHS and not (resumed / "report.json").exists()

    log = _finish(_train(job_file, resumed))
    assert f"resuming after epoch {killed_after}" in log
    trained = [int(line.split("epoch ")[1].split("/")[0]) for line in log.splitlines()
               if f"/{EPOCHS}: step" in line]
    assert trained == list(range(killed_after + 1, EPOCHS + 1))  # no epoch twice

    expected = json.loads((reference / "report.json").read_text())
    got = json.loads((resumed / "report.json").read_text())
    assert got["optimizer_steps"] == expected["optimizer_steps"]
    assert [c["epoch"] for c in got["checkpoints"]] == list(range(1, EPOCHS + 1))
    assert len(got["losses"]) == len(expected["losses"])
    schedule = [json.loads((d / "state" / "state.json").read_text())["lr_scheduler"]
                for d in (reference, resumed)]
    assert schedule[0]["last_epoch"] == schedule[1]["last_epoch"] == got["optimizer_steps"]
    assert schedule[0]["_last_lr"] == pytest.approx(schedule[1]["_last_lr"])
    final = [load_file(str(d / f"epoch_{EPOCHS:04d}.safetensors")) for d in (reference, resumed)]
    for key, tensor in final[0].items():
        assert torch.allclose(tensor, final[1][key], atol=1e-5), key


def test_exploding_learning_rate_stops_with_the_guards_message(tmp_path: Path,
                                                               models_dir: Path) -> None:
    job = _job(tmp_path, models_dir, learning_rate=1e6, warmup_steps=0, max_grad_norm=1e9)
    process = _train(job, tmp_path / "exploding")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2
    assert "stopped: loss became" in output and "lower learning_rate" in output
    assert "Traceback" not in output
    assert not (tmp_path / "exploding" / "report.json").exists()


def test_under_dagster_a_diverging_run_fails_with_the_guards_message(tmp_path: Path) -> None:
    spec = quick_spec()
    spec["training"].update(learning_rate=1e6, max_grad_norm=1e9)
    data_dir = make_data_dir(tmp_path, {"test_style": spec})
    defs = build_definitions(Workspace(data_dir, tmp_path / "outputs"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", ["test_style"])
    result = defs.resolve_job_def("lora_pipeline").execute_in_process(
        partition_key="test_style", instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey(k) for k in ("raw_portfolio", "preprocessed_images",
                                                  "captions", "license_manifest",
                                                  "lora_checkpoints")])
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["lora_checkpoints"]
    message = failures[0].step_failure_data.error.message
    assert "loss became nan" in message and "lower learning_rate" in message
