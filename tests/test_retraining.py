"""The retraining sensor: new spec files become partitions, and a change to a portfolio
requests a run for the partitions that read it, and no others."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.definitions import build_definitions
from tests.conftest import drawing, make_data_dir, quick_spec

STYLE, MITO = "studio_style", "mito_subject"  # style reads all of portfolio/, mito one folder


class Watcher:
    """Evaluates the sensor the way the daemon does: one tick after another, cursor kept."""

    def __init__(self, workspace: Workspace):
        self.defs = build_definitions(workspace)
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None

    def tick(self) -> tuple[list[str], list[str]]:
        """(partitions requested to run, partitions added)."""
        sensor = self.defs.resolve_sensor_def("retraining_sensor")
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                          resources=self.defs.resources)
        result = sensor(context)
        self.cursor = result.cursor
        added = [key for request in result.dynamic_partitions_requests
                 for key in request.partition_keys]
        self.instance.add_dynamic_partitions("lora_specs", added)
        return [r.partition_key for r in result.run_requests], added


@pytest.fixture
def watcher(tmp_path: Path) -> Watcher:
    data = make_data_dir(tmp_path, {STYLE: quick_spec(),
                                    MITO: quick_spec(portfolio=["portfolio/mitochondria"])},
                         copy=True)
    return Watcher(Workspace(data, tmp_path / "outputs"))


def test_first_look_registers_partitions_and_launches_nothing(watcher: Watcher) -> None:
    assert watcher.tick() == ([], [MITO, STYLE])
    assert watcher.tick() == ([], [])


def test_a_new_image_retrains_only_the_partitions_that_read_its_folder(watcher: Watcher
                                                                       ) -> None:
    watcher.tick()
    portfolio = watcher.defs.resources["studio"].workspace.data_dir / "portfolio"
    drawing(7).save(portfolio / "cells" / "new_cell.png")
    assert watcher.tick() == ([STYLE], [])

    drawing(8).save(portfolio / "mitochondria" / "new_mito.png")
    requested, _ = watcher.tick()
    assert sorted(requested) == [MITO, STYLE]
    assert watcher.tick() == ([], [])  # nothing changed since


def test_a_touched_but_unchanged_file_retrains_nothing(watcher: Watcher) -> None:
    watcher.tick()
    image = next((watcher.defs.resources["studio"].workspace.data_dir / "portfolio"
                  / "mitochondria").glob("*.png"))
    os.utime(image, (1_900_000_000, 1_900_000_000))
    assert watcher.tick() == ([], [])


def test_an_edited_caption_sidecar_or_a_new_spec_requests_its_run(watcher: Watcher) -> None:
    watcher.tick()
    data = watcher.defs.resources["studio"].workspace.data_dir
    sidecar = next((data / "portfolio" / "mitochondria").glob("*.txt"))
    sidecar.write_text(sidecar.read_text() + ", matrix granules")
    assert sorted(watcher.tick()[0]) == [MITO, STYLE]

    (data / "loras" / "golgi_subject.yaml").write_text(
        (data / "loras" / f"{MITO}.yaml").read_text())
    assert watcher.tick() == (["golgi_subject"], ["golgi_subject"])


def test_a_broken_spec_is_skipped_while_the_others_are_watched(watcher: Watcher) -> None:
    watcher.tick()
    data = watcher.defs.resources["studio"].workspace.data_dir
    (data / "loras" / "broken.yaml").write_text("type: nonsense\n")
    drawing(9).save(data / "portfolio" / "cells" / "another.png")
    assert watcher.tick() == ([STYLE], [])
