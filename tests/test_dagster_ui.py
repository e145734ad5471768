"""The Dagster UI as the studio's workbench, in a real headless Chromium against
dagster-webserver: a LoRA evaluated by runs launched through the code location (as `bioart
demo` launches them), its readable XY grid and score table, a review typed into the launchpad,
the release that follows and its page.

`make ui-screenshots` runs this module with BIOART_UI_SHOTS=docs/ui: the README's pictures."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from bioart_pipeline.cli import UP_TO_EVALUATION
from bioart_pipeline.common.files import read_json
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.orchestration.partitions import register_spec_partitions
from bioart_pipeline.orchestration.runs import DONE, code_location, follow, launch
from bioart_pipeline.release.review import CHECKLIST
from tests.conftest import REPO, make_data_dir, quick_spec

CHROMIUM = "/usr/bin/chromium"
LORA = "ui_style"
STAGES = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest",
          "lora_checkpoints", "xy_plot_evaluation", "release_review", "validated_release"]
# Runs launched from the UI start at once; `make ui` (dagster dev) runs the daemon that
# dequeues them, a bare dagster-webserver does not.
START_RUNS_AT_ONCE = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Workbench:
    url: str
    instance: dg.DagsterInstance
    workspace: Workspace
    evaluation_run: str
    shots: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    """Two LoRA partitions, one evaluated up to the XY plot by a run launched through the
    code location; dagster-webserver on loopback."""
    root = tmp_path_factory.mktemp("workbench")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text() + START_RUNS_AT_ONCE)
    # The first-visit newsletter dialog would open over whatever the test clicks.
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    data = make_data_dir(root, {LORA: quick_spec(),
                                "ui_mito": quick_spec(portfolio=["portfolio/mitochondria"])})
    workspace = Workspace(data, root / "outputs")
    shots = Path(os.environ.get("BIOART_UI_SHOTS") or root / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("BIOART_DATA_DIR", str(data))
        env.setenv("BIOART_OUTPUTS_DIR", str(workspace.outputs_dir))
        instance = dg.DagsterInstance.from_config(str(home))
        register_spec_partitions(instance, workspace)
        with code_location(instance) as location:
            run_id = launch(location, "lora_retraining", LORA, UP_TO_EVALUATION)
            assert follow(instance, run_id, print) == dg.DagsterRunStatus.SUCCESS
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{url}/server_info", server)
            yield Workbench(url, instance, workspace, run_id, shots)
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


@pytest.fixture(scope="module")
def page():
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
    """Open `url`, wait until every text is rendered (visible text only), and return the
    page text."""
    page.goto(url)
    return _wait_for_texts(page, texts, timeout)


def _wait_for_texts(page, texts: list[str], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while True:
        body = page.inner_text("body")
        missing = [t for t in texts if t not in body]
        if not missing:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{page.url} never showed {missing}; it shows: {body[:800]}")
        page.wait_for_timeout(500)


def _close_dialog(page) -> None:
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")


def _metadata_row(page, key: str):
    """The metadata table's row for `key` (not a row of a table shown inside it)."""
    return page.locator(f"xpath=//tr[td[1][normalize-space()='{key}']]").first


def _screenshot(page, path: Path, width: int = 1100) -> None:
    """A README-sized picture: scaled down and reduced to a palette (tens of KB)."""
    page.screenshot(path=str(path))
    with Image.open(path) as shot:
        small = shot.convert("RGB")
    small.thumbnail((width, width))
    small.quantize(colors=128).save(path, optimize=True)


def _wait_for_run(instance: dg.DagsterInstance, after: set[str], timeout: float = 300
                  ) -> dg.DagsterRun:
    """The run that started since `after` (the run ids there were), once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in instance.get_runs() if r.run_id not in after]
        if new and new[0].status in DONE:
            return new[0]
        time.sleep(1)
    raise TimeoutError(f"no run ended within {timeout} s")


def test_ui_lists_assets_partitions_and_lineage(workbench: Workbench, page) -> None:
    url = workbench.url
    _show(page, f"{url}/assets", STAGES)
    _show(page, f"{url}/assets/raw_portfolio?view=partitions", [LORA, "ui_mito"])
    body = _show(page, f"{url}/assets/raw_portfolio?view=events&partition={LORA}",
                 ["unusable_files", "table_sha256", "licenses"])
    assert f"{workbench.workspace.data_dir}" not in body  # paths relative to the data folder
    lineage = f"{url}/assets/validated_release?view=lineage&lineageScope=upstream&lineageDepth=7"
    # The graph abbreviates long names ("preprocess…_images"); the others show whole.
    _show(page, lineage, [s for s in STAGES if s != "preprocessed_images"])


def test_launched_runs_show_in_the_job_run_list(workbench: Workbench, page) -> None:
    body = _show(page, f"{workbench.url}/locations/bioart_pipeline/jobs/lora_retraining/runs",
                 [workbench.evaluation_run[:8], f"partition: {LORA}"])
    assert "Success" in body


def test_the_xy_grid_reads_at_full_size_and_the_scores_are_a_table(workbench: Workbench,
                                                                   page) -> None:
    body = _show(page, f"{workbench.url}/assets/xy_plot_evaluation?view=events&partition={LORA}",
                 ["xy_grid_prompt_1", "scores", "verdict", "recommended"])
    scores = _metadata_row(page, "scores").inner_text()
    assert scores.index("base") < scores.index("epoch 1") < scores.index("epoch 2")
    assert "pass" in scores and "true" in scores  # a verdict per cell, the recommended marked
    assert workbench.workspace.outputs_dir.as_posix() not in body  # relative paths only

    _metadata_row(page, "xy_grid_prompt_1").get_by_text("[Show Markdown]").click()
    prompt = quick_spec()["validation_prompts"][0]
    _wait_for_texts(page, [prompt])
    grid = page.get_by_role("dialog").locator('img[alt^="XY grid"]')
    natural = grid.evaluate("img => img.naturalWidth")
    assert natural >= 400 and grid.bounding_box()["width"] >= 0.95 * natural  # not shrunk
    _screenshot(page, workbench.shots / "xy_grid.png")
    _close_dialog(page)


def _open_review_launchpad(page, url: str) -> None:
    """As the asset's description says: the arrow beside Materialize, Open launchpad."""
    _show(page, f"{url}/assets/release_review", ["Open launchpad"])
    page.locator("button:right-of(:text('Materialize…'))").first.click()
    page.get_by_role("menuitem", name="Open launchpad").click()
    partition = page.get_by_placeholder("Partition")
    partition.click()
    partition.fill(LORA)
    page.get_by_role("menuitem", name=LORA).click()
    _wait_for_texts(page, ["Missing required config entries ['decision', 'reviewer']"])


def _type_at_line_end(page, line_start: str, erase: int, text: str) -> None:
    page.locator(".CodeMirror-line", has_text=line_start).first.click()
    page.keyboard.press("End")
    for _ in range(erase):
        page.keyboard.press("Backspace")
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # closes the editor's completion hints


def test_a_review_typed_into_the_launchpad_is_recorded_and_releases(workbench: Workbench,
                                                                    page) -> None:
    _open_review_launchpad(page, workbench.url)
    answers = {item: "pass" for item in CHECKLIST} | {"dna": "not shown"}
    for item, answer in answers.items():
        _type_at_line_end(page, f"{item}:", len("'not checked'"), answer)
    _type_at_line_end(page, "checkpoint:", 0, "")
    page.keyboard.press("Enter")
    page.keyboard.type("reviewer: Dr. Ada Lovelace")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.keyboard.type("decision: approve")
    page.keyboard.press("Escape")
    _wait_for_texts(page, ["No errors"])
    _screenshot(page, workbench.shots / "review_launchpad.png")
    before = {r.run_id for r in workbench.instance.get_runs()}
    page.locator("button", has_text=re.compile(r"^Materialize$")).click()
    review_run = _wait_for_run(workbench.instance, before)
    assert review_run.status == dg.DagsterRunStatus.SUCCESS

    (record,) = (workbench.workspace.reviews_dir / LORA).glob("*.json")
    review = read_json(record)
    assert (review["reviewer"], review["approved"], review["demo"]) == (
        "Dr. Ada Lovelace", True, False)
    assert review["checklist"] == answers

    with code_location(workbench.instance) as location:
        run_id = launch(location, "lora_pipeline", LORA, ["validated_release"])
        assert follow(workbench.instance, run_id, print) == dg.DagsterRunStatus.SUCCESS
    assert list((workbench.workspace.releases_dir / LORA).glob("v1/*.safetensors"))


def test_the_release_page_tells_the_story(workbench: Workbench, page) -> None:
    """After the review above: gates, reviewer, approved cell, model card, the audit check."""
    body = _show(page, f"{workbench.url}/assets/validated_release?view=events&partition={LORA}",
                 ["gates", "review_approves_release", "approved_cell", "model_card"])
    gates = _metadata_row(page, "gates").inner_text()
    assert gates.count("passed") == 3, gates
    for check in ("no_refused_image_trains", "recommendation_passes"):
        assert check in gates
    assert "approved epoch" in gates and "Dr. Ada Lovelace" in body
    _screenshot(page, workbench.shots / "release_page.png")

    _metadata_row(page, "approved_cell").get_by_text("[Show Markdown]").click()
    cell = page.get_by_role("dialog").locator('img[alt*="at weight"]')
    assert cell.evaluate("img => img.naturalWidth") > 0  # the approved cell, per prompt
    _close_dialog(page)
    _metadata_row(page, "model_card").get_by_text("[Show Markdown]").click()
    _wait_for_texts(page, ["Trigger word", "Training data", "Base model"])
    _close_dialog(page)
    _show(page, f"{workbench.url}/assets/validated_release?view=checks",
          ["release_passes_audit"])
