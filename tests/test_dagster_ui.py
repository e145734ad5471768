"""The Dagster UI in a real headless Chromium: assets, lineage, partitions, metadata."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from bioart_pipeline.orchestration.partitions import register_spec_partitions
from tests.conftest import REPO, make_data_dir, quick_spec

CHROMIUM = "/usr/bin/chromium"
STAGES = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest",
          "lora_checkpoints", "xy_plot_evaluation", "release_review", "validated_release"]
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui(tmp_path: Path):
    """A Dagster instance with two LoRA partitions and one materialization, served by
    dagster-webserver on loopback."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    data = make_data_dir(tmp_path, {"ui_style": quick_spec(),
                                    "ui_mito": quick_spec(portfolio=["portfolio/mitochondria"])})
    workspace = Workspace(data, tmp_path / "outputs")
    env = {**os.environ, "DAGSTER_HOME": str(home), "BIOART_DATA_DIR": str(data),
           "BIOART_OUTPUTS_DIR": str(workspace.outputs_dir)}
    instance = dg.DagsterInstance.from_config(str(home))
    register_spec_partitions(instance, workspace)
    job = build_definitions(workspace).resolve_job_def("lora_pipeline")
    assert job.execute_in_process(partition_key="ui_style", instance=instance,
                                  asset_selection=[dg.AssetKey("raw_portfolio")]).success
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/server_info", server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


@pytest.fixture
def page(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _show(page, url: str, texts: list[str], timeout: float = 90) -> str:
    """Open `url`, dismiss the first-visit newsletter dialog, wait until every text is
    rendered (visible text only), and return the page text."""
    page.goto(url)
    deadline = time.monotonic() + timeout
    while True:
        skip = page.get_by_role("button", name="Skip")
        if skip.count() and skip.first.is_visible():
            skip.first.click()
        body = page.inner_text("body")
        missing = [t for t in texts if t not in body]
        if not missing:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {missing}; it shows: {body[:800]}")
        page.wait_for_timeout(500)


def test_ui_lists_assets_partitions_and_metadata(ui: str, page, tmp_path: Path) -> None:
    _show(page, f"{ui}/assets", STAGES)
    _show(page, f"{ui}/assets/raw_portfolio?view=partitions", ["ui_style", "ui_mito"])
    body = _show(page, f"{ui}/assets/raw_portfolio?view=events&partition=ui_style",
                 ["unusable_files", "table_sha256", "licenses"])
    assert "ui_style" in body
    page.screenshot(path=str(tmp_path / "raw_portfolio_events.png"))
    lineage = f"{ui}/assets/validated_release?view=lineage&lineageScope=upstream&lineageDepth=7"
    # The graph abbreviates long names ("preprocess…_images"); the others show whole.
    _show(page, lineage, [s for s in STAGES if s != "preprocessed_images"])
    page.screenshot(path=str(tmp_path / "lineage.png"))
