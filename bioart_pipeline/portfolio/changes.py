"""What a LoRA is trained from, as one fingerprint: its spec file, the terminology and studio
files, every file under its portfolio and regularization folders (images and their sidecars)
and the licence sign-offs recorded for it.

The retraining sensor and schedule compare fingerprints to find the partitions that need a run.
Content hashes, not modification times, decide: a file touched but unchanged changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from bioart_pipeline.common.files import atomic_write_json, read_json, sha256_file, sha256_json
from bioart_pipeline.common.paths import Workspace, signoff_files
from bioart_pipeline.specs import LoraSpec, SpecError, list_spec_files, load_spec

INPUTS_FILE = "inputs.json"  # written by raw_portfolio beside its table, copied into releases


class HashCache:
    """sha256 per file, keyed by path, size and mtime: an unchanged file is read only once."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, list] = read_json(path) if path.exists() else {}
        self.changed = False

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key, stamp = str(file), [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(key)
        if entry is None or entry[:2] != stamp:
            self.entries[key] = [*stamp, sha256_file(file)]
            self.changed = True
        return self.entries[key][2]

    def save(self) -> None:
        if self.changed:
            atomic_write_json(self.path, self.entries)
            self.changed = False


def hash_cache(workspace: Workspace) -> HashCache:
    return HashCache(workspace.cache_dir / "input_hashes.json")


def input_files(workspace: Workspace, spec: LoraSpec) -> list[Path]:
    files = [workspace.specs_dir / spec.source_file]
    files += [f for f in (workspace.terminology_file, workspace.studio_file) if f.exists()]
    files += signoff_files(workspace.signoffs_dir, spec.name)
    for folder in (*spec.portfolio, *spec.regularization):
        root = workspace.resolve_input(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"portfolio folder {root} does not exist")
        files += sorted(p for p in root.rglob("*")
                        if (p.is_symlink() or p.is_file()) and not p.name.startswith("."))
    return files


def inputs_fingerprint(workspace: Workspace, spec: LoraSpec, cache: HashCache) -> str:
    """Changes when any input file is added, removed, renamed or edited. A symbolic link
    counts by where it points: what it points at is never read (ingest does not follow it)."""
    return sha256_json([(workspace.display_path(f),
                         f"symlink:{os.readlink(f)}" if f.is_symlink() else cache.sha256(f))
                        for f in input_files(workspace, spec)])[:16]


def current_fingerprints(workspace: Workspace) -> tuple[dict[str, str], dict[str, str]]:
    """(partition -> inputs fingerprint, partition -> why it has none) for every spec file."""
    cache = hash_cache(workspace)
    fingerprints, problems = {}, {}
    for path in list_spec_files(workspace.specs_dir):
        try:
            fingerprints[path.stem] = inputs_fingerprint(workspace, load_spec(path), cache)
        except (SpecError, FileNotFoundError) as exc:
            problems[path.stem] = str(exc)
    cache.save()
    return fingerprints, problems
