"""Every import in the package runs down the layers: a module imports only from its own layer
or the ones below. The same order is in the README's layout section."""

from __future__ import annotations

import ast
from pathlib import Path

import bioart_pipeline

PACKAGE = Path(bioart_pipeline.__file__).parent
# Lowest first. The workshop (the sample portfolio and the base-model builders) sits above the
# runtime stages it uses; only the command line reaches it.
LAYERS = ("common", "compute", "models", "specs", "portfolio", "preprocessing", "licensing",
          "captioning", "generation", "training", "evaluation", "release", "pretraining",
          "sample_portfolio", "orchestration", "definitions", "cli")


def _layer(module: Path) -> str:
    return module.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(module: Path) -> set[str]:
    """The package's top-level rooms a module imports, lazily inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found = [node.module] if node.module != "bioart_pipeline" else \
                [f"bioart_pipeline.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        else:
            continue
        names |= {n.split(".")[1] for n in found if n.startswith("bioart_pipeline.")}
    return names


def test_every_room_is_in_a_layer() -> None:
    rooms = {_layer(m) for m in PACKAGE.rglob("*.py")} - {"__init__"}
    assert sorted(rooms - set(LAYERS)) == []


def test_imports_only_run_down() -> None:
    upward = []
    for module in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(module)
        if layer == "__init__":
            continue
        upward += [f"{module.relative_to(PACKAGE)} imports {room}"
                   for room in sorted(_imported(module))
                   if LAYERS.index(room) > LAYERS.index(layer)]
    assert upward == []


WORKSHOP = ("pretraining", "sample_portfolio")  # builds the embedded default, never runs in it


def test_the_runtime_never_imports_the_workshop() -> None:
    """Only the command line (`bioart build-base`) reaches the workshop: a Ray worker or a
    Dagster run never loads the corpus painter or the base-model builders."""
    reaching = [f"{m.relative_to(PACKAGE)} imports {room}"
                for m in sorted(PACKAGE.rglob("*.py"))
                if _layer(m) not in (*WORKSHOP, "cli")
                for room in sorted(_imported(m) & set(WORKSHOP))]
    assert reaching == []
