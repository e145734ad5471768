"""Experiment tracking with wandb: offline unless turned on, so no data leaves the studio.

`mode` is wandb's: "offline" (default: runs stay on disk, `wandb sync` uploads them later),
"online" (needs WANDB_API_KEY in the environment; wandb reads it, we never touch it), or
"disabled" (no wandb at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

WANDB_MODES = ("offline", "online", "disabled")


class Tracker:
    def __init__(self, mode: str, project: str, run_dir: Path, name: str,
                 config: dict[str, Any]):
        if mode not in WANDB_MODES:
            raise ValueError(f"wandb mode must be one of {WANDB_MODES}, got {mode!r}")
        self.run = None
        if mode == "disabled":
            return
        import wandb

        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, mode=mode, dir=str(run_dir), name=name,
                              config=config, settings=wandb.Settings(silent=True))

    def log(self, step: int | None, values: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log(values, step=step)

    def log_image(self, step: int | None, key: str, image: Image.Image, caption: str) -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Image(image, caption=caption)}, step=step)

    def log_table(self, key: str, rows: list[dict[str, Any]]) -> None:
        if self.run is not None and rows:
            import wandb

            columns = list(rows[0])
            self.run.log({key: wandb.Table(columns=columns,
                                           data=[[row[c] for c in columns] for row in rows])})

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
