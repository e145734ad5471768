"""One LoRA trained by several processes (data parallel, gloo on the CPU here; one process
per GPU on a real machine): the same result as one process with the combined batch.

Both runs go through the compute entrypoint as the local backend runs it. Tolerance: 1e-5
on every LoRA weight and on the logged losses; the runs differ only in the order floats are
summed (across processes, and in each process's threads)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from bioart_pipeline.compute.placement import Placement
from tests.conftest import tiny_training_job

TOLERANCE = 1e-5


def _train(tmp_path: Path, models_dir: Path, name: str, batch_size: int, processes: int
           ) -> tuple[Path, str]:
    (tmp_path / name).mkdir()
    job = tiny_training_job(tmp_path / name, models_dir, epochs=2, save_every_n_epochs=1,
                            batch_size=batch_size, grad_accumulation=1, warmup_steps=0)
    # 11 images: the last batch of each epoch (3 of 8) splits unevenly, 2 and 1.
    job = dataclasses.replace(job, images=job.images[:11],
                              placement=Placement(device="cpu", processes=processes))
    run_dir = tmp_path / name / "run"
    done = subprocess.run([sys.executable, "-m", "bioart_pipeline.compute.entrypoint",
                           str(job.save(tmp_path / name / "job.json")), str(run_dir)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return run_dir, done.stdout + done.stderr


def test_two_processes_train_what_one_trains_with_the_combined_batch(
        tmp_path: Path, models_dir: Path) -> None:
    one, _ = _train(tmp_path, models_dir, "one", batch_size=8, processes=1)
    two, output = _train(tmp_path, models_dir, "two", batch_size=4, processes=2)

    reports = {run: json.loads((run / "report.json").read_text()) for run in (one, two)}
    assert reports[two]["processes"] == 2 and reports[one]["processes"] == 1
    assert reports[two]["optimizer_steps"] == reports[one]["optimizer_steps"] == 4
    assert torch.allclose(torch.tensor(reports[two]["losses"]),
                          torch.tensor(reports[one]["losses"]), atol=TOLERANCE)
    # One writer: the same files as a one-process run, written once.
    assert sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    for epoch in ("epoch_0001.safetensors", "epoch_0002.safetensors"):
        expected, got = load_file(str(one / epoch)), load_file(str(two / epoch))
        assert expected.keys() == got.keys()
        worst = max((expected[k] - got[k]).abs().max().item() for k in expected)
        assert worst <= TOLERANCE, f"{epoch}: LoRA weights differ by up to {worst:.2e}"
    assert "2 processes" in output  # the placement was reported, from the first process
