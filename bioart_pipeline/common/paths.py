"""Where inputs live and where each stage writes: the one map of the file layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The one Parquet table each stage writes per partition; the next stage reads it.
STAGE_TABLES = {
    "raw_portfolio": "portfolio.parquet",
    "preprocessed_images": "preprocessed.parquet",
    "captions": "captions.parquet",
    "license_manifest": "manifest.parquet",
    "lora_checkpoints": "checkpoints.parquet",
    "xy_plot_evaluation": "scores.parquet",
}


@dataclass(frozen=True)
class Workspace:
    """`data_dir` holds what the studio owns (read-only to us); `outputs_dir` what we generate."""

    data_dir: Path
    outputs_dir: Path

    @classmethod
    def from_env(cls) -> Workspace:
        data_dir = Path(os.environ.get("BIOART_DATA_DIR", REPO_ROOT / "data"))
        outputs_dir = Path(os.environ.get("BIOART_OUTPUTS_DIR", data_dir / "outputs"))
        return cls(data_dir=data_dir.resolve(), outputs_dir=outputs_dir.resolve())

    @property
    def specs_dir(self) -> Path:
        return self.data_dir / "loras"

    @property
    def terminology_file(self) -> Path:
        return self.data_dir / "terminology.yaml"

    @property
    def studio_file(self) -> Path:
        """Who the studio is: its own licence ids and author names (licensing/studio.py)."""
        return self.data_dir / "studio.yaml"

    @property
    def signoffs_dir(self) -> Path:
        return self.outputs_dir / "signoffs"

    @property
    def models_dir(self) -> Path:
        return self.outputs_dir / "models"

    @property
    def cache_dir(self) -> Path:
        """Content-addressed files shared by all partitions (preprocessed images, latents)."""
        return self.outputs_dir / "cache"

    @property
    def reviews_dir(self) -> Path:
        return self.outputs_dir / "reviews"

    @property
    def releases_dir(self) -> Path:
        return self.outputs_dir / "releases"

    def stage_dir(self, stage: str, lora: str) -> Path:
        """Per-partition output folder of a stage, e.g. outputs/captions/<lora>/."""
        return self.outputs_dir / stage / lora

    def table(self, stage: str, lora: str) -> Path:
        return self.stage_dir(stage, lora) / STAGE_TABLES[stage]

    def tables(self, lora: str, *stages: str) -> dict[str, Path]:
        return {stage: self.table(stage, lora) for stage in stages}

    def resolve_input(self, relative: str | Path) -> Path:
        """A path from a spec: relative paths are relative to the data folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.data_dir / path

    def display_path(self, path: Path) -> str:
        """Path relative to the data folder (or else the outputs folder) where possible, so
        tables and fingerprints don't carry home dirs."""
        absolute = Path(os.path.abspath(path))  # not resolve: a symlinked portfolio folder
        for root in (self.data_dir, self.outputs_dir):  # keeps its data-relative name
            if absolute.is_relative_to(root):
                return absolute.relative_to(root).as_posix()
        return path.as_posix()


def signoff_files(signoffs_dir: Path, lora: str) -> list[Path]:
    """A LoRA's sign-off records (licensing/signoff.py writes them), oldest first: also an
    input of its raw portfolio's fingerprint (portfolio/changes.py)."""
    return sorted((signoffs_dir / lora).glob("*.json"))
