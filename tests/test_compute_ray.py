"""The ray compute backend on a real Ray cluster: a head started on 127.0.0.1 with 2 CPUs.

Captioning, training and the XY plot (with CLIP) through it inside a Dagster run give what
the local backend gives; failures surface as the step's failure with the job's message,
record nothing, and leave neither the worker's temporary folder nor anything in the transfer
store; a cancelled run stops its Ray job."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bioart_pipeline.captioning.florence import TINY_FLORENCE_SOURCE
from bioart_pipeline.common.files import read_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.compute.crypto import new_key
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.evaluation.clip_scores import TINY_CLIP_SOURCE
from bioart_pipeline.evaluation.stage import evaluation_folder
from bioart_pipeline.orchestration import compute
from tests.conftest import make_data_dir, quick_spec

pytestmark = pytest.mark.ray
LORA = "remote"
UP_TO_MANIFEST = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest"]
# Sidecars removed from a copy of the sample portfolio: these images go to the captioner.
UNCAPTIONED = ["mito_cluster_02", "mito_cutaway_01"]
KEY = new_key()


def _ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen (one at a time,
    the system may hand the same port out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Ray head as a studio would start it on a rented GPU box, with the transfer key and
    bioart_pipeline's Python in its environment (here: this venv, no GPU)."""
    worker_tmp = tmp_path_factory.mktemp("worker_tmp")
    ray = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "BIOART_TRANSFER_KEY": KEY, "BIOART_WORKER_TMPDIR": str(worker_tmp),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "WANDB_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    gcs, dashboard, client = _ports(3)
    started = subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={client}", "--num-cpus=2", "--num-gpus=0",
         "--object-store-memory=200000000", "--disable-usage-stats",
         f"--temp-dir=/tmp/ray-bioart-{os.getpid()}"],
        env=env, capture_output=True, text=True, timeout=120)
    if started.returncode:
        raise RuntimeError(f"ray start failed ({started.returncode}): {started.stderr[-2000:]}")
    try:
        yield {"address": f"http://127.0.0.1:{dashboard}", "worker_tmp": worker_tmp}
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(f"/tmp/ray-bioart-{os.getpid()}", ignore_errors=True)


@pytest.fixture
def ray_env(cluster: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process configured for the ray backend; returns the transfer store folder."""
    store = tmp_path / "store"
    store.mkdir()
    for name, value in {"BIOART_COMPUTE": "ray", "BIOART_RAY_ADDRESS": cluster["address"],
                        "BIOART_TRANSFER_STORE": str(store), "BIOART_RAY_GPUS": "0",
                        # the local run's 2 threads: the same float reduction order
                        "BIOART_RAY_CPUS": "2", "BIOART_TRANSFER_KEY": KEY}.items():
        monkeypatch.setenv(name, value)
    return store


def _workspace(root: Path, uncaptioned: list[str] | None = None, **spec) -> Workspace:
    data = make_data_dir(root, {LORA: quick_spec(portfolio=["portfolio/mitochondria"], **spec)},
                         copy=bool(uncaptioned))
    for stem in uncaptioned or []:
        (data / "portfolio" / "mitochondria" / f"{stem}.txt").unlink()
    return Workspace(data, root / "outputs")


def _materialize(workspace: Workspace, assets: list[str]) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("lora_specs", [LORA])
    definitions = build_definitions(workspace, caption_model=TINY_FLORENCE_SOURCE)
    return definitions.resolve_job_def("lora_pipeline").execute_in_process(
        partition_key=LORA, instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey(a) for a in assets])


def _checkpoints(workspace: Workspace) -> dict[str, dict[str, torch.Tensor]]:
    files = sorted((workspace.outputs_dir / "lora_checkpoints" / LORA).glob("*/epoch_*.*"))
    return {f.name: load_file(str(f)) for f in files if f.suffix == ".safetensors"}


def _failure(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


def _nothing_left(cluster: dict, store: Path) -> None:
    assert list(cluster["worker_tmp"].iterdir()) == []
    assert list(store.iterdir()) == []


def test_ray_backend_captions_trains_and_evaluates_as_the_local_backend_does(
        cluster: dict, ray_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOART_CLIP_MODEL", TINY_CLIP_SOURCE)
    everything = [*UP_TO_MANIFEST, "lora_checkpoints", "xy_plot_evaluation"]
    monkeypatch.setenv("BIOART_COMPUTE", "local")
    local = _workspace(tmp_path / "local", UNCAPTIONED)
    assert _materialize(local, everything).get_asset_materialization_events()

    monkeypatch.setenv("BIOART_COMPUTE", "ray")
    remote = _workspace(tmp_path / "remote", UNCAPTIONED)
    result = _materialize(remote, everything)
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert set(everything) <= materialized

    captions = {w: read_table(w.table("captions", LORA)).set_index("path") for w in (local,
                                                                                     remote)}
    model_made = captions[remote]["origin"].str.startswith(TINY_FLORENCE_SOURCE)
    assert sorted(Path(p).stem for p in captions[remote].index[model_made]) == UNCAPTIONED
    assert captions[remote]["caption"].equals(captions[local]["caption"])

    expected, got = _checkpoints(local), _checkpoints(remote)
    assert sorted(got) == sorted(expected) == ["epoch_0001.safetensors",
                                               "epoch_0002.safetensors"]
    for name, tensors in expected.items():
        assert tensors.keys() == got[name].keys()
        assert all(torch.allclose(tensors[k], got[name][k], atol=1e-6) for k in tensors), name

    scores = {w: read_table(w.table("xy_plot_evaluation", LORA)) for w in (local, remote)}
    assert "clip_score" in scores[remote].columns
    numeric = scores[local].select_dtypes("number").columns
    assert np.allclose(scores[remote][numeric], scores[local][numeric], atol=1e-3)
    folder = evaluation_folder(remote, LORA, scores[remote]["evaluation"].iloc[0])
    images = read_table(folder / "images.parquet")
    assert all((folder / f).is_file() for f in images["file"])  # paths as the studio has them

    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster["address"])
    jobs = [j for j in client.list_jobs()
            if (j.metadata or {}).get("dagster_run_id") == result.run_id]
    # They really ran on Ray, one job per GPU stage.
    assert sorted((j.metadata["kind"], str(j.status.value)) for j in jobs) == [
        ("captioning", "SUCCEEDED"), ("training", "SUCCEEDED"), ("xy_plot", "SUCCEEDED")]
    # The key was in both environments, and nowhere else.
    for job in jobs:
        assert KEY not in client.get_job_logs(job.submission_id)
        assert KEY not in json.dumps(job.runtime_env) + job.entrypoint
    assert not [e for e in result.all_events if KEY in (e.message or "")]
    _nothing_left(cluster, ray_env)


def test_a_diverging_remote_run_fails_with_the_guards_message(cluster: dict, ray_env: Path,
                                                              tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, training={**quick_spec()["training"],
                                               "learning_rate": 1e6})
    result = _materialize(workspace, [*UP_TO_MANIFEST, "lora_checkpoints"])
    assert not result.success
    message = _failure(result)
    assert "loss became" in message and "lower learning_rate" in message
    assert not workspace.table("lora_checkpoints", LORA).exists()
    assert _checkpoints(workspace) == {}
    _nothing_left(cluster, ray_env)


def _break_one_image(workspace: Workspace) -> None:
    """A preprocessed file swapped for one of the wrong size: the trainer must refuse it."""
    victim = next((workspace.cache_dir / "preprocessed").glob("*.png"))
    Image.new("RGB", (40, 40), "red").save(victim)


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_crash_in_the_trainer_fails_the_step_with_its_message_and_records_nothing(
        backend: str, cluster: dict, ray_env: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOART_COMPUTE", backend)
    workspace = _workspace(tmp_path)
    assert _materialize(workspace, UP_TO_MANIFEST).success
    _break_one_image(workspace)
    result = _materialize(workspace, ["lora_checkpoints"])
    assert not result.success
    message = _failure(result)
    assert "training failed: ValueError" in message and "expected its bucket" in message
    assert not result.get_asset_materialization_events()
    assert not workspace.table("lora_checkpoints", LORA).exists()
    assert not list((workspace.outputs_dir / "lora_checkpoints" / LORA).glob("*/report.json"))
    if backend == "ray":
        _nothing_left(cluster, ray_env)


def test_cancelling_the_run_stops_the_ray_job(cluster: dict, ray_env: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What Dagster raises in a step when its run is terminated, raised once training runs."""
    from ray.job_submission import JobSubmissionClient

    submitted: list[str] = []

    def wait_then_interrupt(client, job_id: str, poll_seconds: float = 1.0) -> str:
        submitted.append(job_id)
        deadline = time.time() + 120
        while "epoch 1/" not in client.get_job_logs(job_id) and time.time() < deadline:
            time.sleep(0.5)
        raise dg.DagsterExecutionInterruptedError()

    monkeypatch.setattr(compute, "_wait", wait_then_interrupt)
    workspace = _workspace(tmp_path, training={**quick_spec()["training"], "epochs": 20})
    assert not _materialize(workspace, [*UP_TO_MANIFEST, "lora_checkpoints"]).success
    client = JobSubmissionClient(cluster["address"])
    deadline = time.time() + 60
    while not client.get_job_status(submitted[0]).is_terminal() and time.time() < deadline:
        time.sleep(0.5)
    assert str(client.get_job_status(submitted[0]).value) == "STOPPED"
    assert "worker: temporary folder removed" in client.get_job_logs(submitted[0])
    assert _checkpoints(workspace) == {}
    _nothing_left(cluster, ray_env)


def test_one_lora_trains_as_two_processes_on_the_cluster(cluster: dict, ray_env: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Data parallel on a Ray worker: two processes (gloo here, one per GPU on a GPU box)."""
    monkeypatch.setenv("BIOART_DEVICE", "cpu")
    monkeypatch.setenv("BIOART_PROCESSES", "2")
    workspace = _workspace(tmp_path)
    result = _materialize(workspace, [*UP_TO_MANIFEST, "lora_checkpoints"])
    assert result.success
    (report,) = (workspace.outputs_dir / "lora_checkpoints" / LORA).glob("*/report.json")
    assert json.loads(report.read_text())["processes"] == 2
    assert sorted(_checkpoints(workspace)) == ["epoch_0001.safetensors", "epoch_0002.safetensors"]
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster["address"])
    (job,) = [j for j in client.list_jobs()
              if (j.metadata or {}).get("dagster_run_id") == result.run_id]
    assert "training on cpu float32, 2 processes" in client.get_job_logs(job.submission_id)
    _nothing_left(cluster, ray_env)
