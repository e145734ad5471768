"""`bioart audit` on files that are not what it expects: exit 1, one clear line, valid JSON
with --json; never a traceback. Every file is written here."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
import torch

from bioart_pipeline.cli import main
from bioart_pipeline.training.export import write_lora


@pytest.fixture(autouse=True)
def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BIOART_OUTPUTS_DIR", str(tmp_path / "outputs"))


def _audit(path: Path, capsys: pytest.CaptureFixture, *options: str) -> tuple[int, str]:
    code = main(["audit", str(path), *options])
    return code, capsys.readouterr().out


HOSTILE = {
    "random bytes": os.urandom(1 << 16),
    "a text file": b"weights? no: notes about a drawing\n" * 20,
    "three bytes": b"abc",
    "a huge declared header": struct.pack("<Q", 2 ** 62) + b"{}",
    "a header that is not JSON": struct.pack("<Q", 12) + b"{not: json!}",
}


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_damaged_or_hostile_lora_is_one_line_and_exit_1(
        content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    code, out = _audit(path, capsys)
    assert code == 1
    (line,) = out.strip().splitlines()
    assert line.startswith(f"audit failed: {path.name} is not a readable safetensors file (")
    code, out = _audit(path, capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert "not a readable safetensors file" in report["problems"][0]


def test_a_lora_without_provenance_says_so(tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    path = write_lora(tmp_path / "foreign.safetensors",
                      {"lora_unet_a.lora_down.weight": torch.zeros(2, 2)}, {})
    code, out = _audit(path, capsys, "--json")
    assert code == 1
    assert json.loads(out)["problems"] == [
        "foreign.safetensors carries no provenance pointer (bioart.release_id)"]


def test_a_corrupt_release_record_is_a_problem_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    write_lora(folder / "model.safetensors", {"lora_unet_a.lora_down.weight": torch.zeros(2, 2)},
               {"bioart.release_id": "r1"})
    (folder / "release.json").write_text("{truncated")
    code, out = _audit(folder, capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["release_id"] == "r1"
    assert report["problems"][0].startswith("a release file is unreadable (JSONDecodeError")


def test_a_file_that_is_not_a_lora_is_named(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"\x80\x04pickle")
    code, out = _audit(path, capsys)
    assert code == 1
    assert out.strip() == f"audit failed: {path} is neither a release folder nor a " \
                          ".safetensors file"
