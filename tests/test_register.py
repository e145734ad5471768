"""`bioart register`: every loadable spec file becomes a partition; a broken one is named
and left out; `bioart demo --lora` of a spec that does not exist says what to do."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from bioart_pipeline.cli import main
from tests.conftest import make_data_dir, quick_spec


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = make_data_dir(tmp_path, {"good": quick_spec()})
    (data / "loras" / "broken.yaml").write_text("type: style\nproject: [unclosed\n")
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BIOART_DATA_DIR", str(data))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(tmp_path / "outputs"))
    return data


def _partitions() -> list[str]:
    with dg.DagsterInstance.get() as instance:
        return instance.get_dynamic_partitions("lora_specs")


def test_register_adds_loadable_specs_and_names_the_broken_one(
        data: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["register"]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "registered: good; partitions: good"
    assert err.startswith("not registered: ") and "broken.yaml" in err
    assert _partitions() == ["good"]

    (data / "loras" / "broken.yaml").write_text(yaml.safe_dump(quick_spec()))
    assert main(["register"]) == 0
    assert capsys.readouterr().out.strip() == "registered: broken; partitions: good, broken"
    assert sorted(_partitions()) == ["broken", "good"]


def test_demo_of_a_spec_that_does_not_exist_says_what_to_do(
        data: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--lora", "typo"]) == 2
    assert "no spec file for ['typo']" in capsys.readouterr().err
