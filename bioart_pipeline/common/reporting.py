"""Where a job's progress lines go: the console, Dagster Pipes, or a test's list."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def log(self, message: str) -> None: ...
