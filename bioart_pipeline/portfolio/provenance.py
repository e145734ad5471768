"""Who made an image, where it came from, under which license: the sidecar files beside it
(what the file itself carries is read in portfolio/embedded.py)."""

from __future__ import annotations

from pathlib import Path

from bioart_pipeline.common.files import read_yaml_mapping

SIDECAR_SUFFIX = ".license.yaml"
FOLDER_DEFAULT = "_default.license.yaml"
PROVENANCE_FIELDS = ("license", "author", "source", "retrieved", "license_url", "attribution")


def read_sidecar(image: Path, root: Path) -> tuple[dict[str, str], str]:
    """The image's own sidecar, else the nearest folder default up to `root`.

    Returns the provenance fields and the sidecar file it came from ('' if none).
    """
    candidates = [image.with_name(image.name + SIDECAR_SUFFIX)]
    folder = image.parent
    while True:
        candidates.append(folder / FOLDER_DEFAULT)
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    for candidate in candidates:
        if candidate.is_file():
            return _load_fields(candidate), candidate.as_posix()
    return {name: "" for name in PROVENANCE_FIELDS}, ""


def _load_fields(path: Path) -> dict[str, str]:
    raw = read_yaml_mapping(path, "license sidecar")
    return {name: _field_text(path, name, raw.get(name)) for name in PROVENANCE_FIELDS}


def _field_text(path: Path, name: str, value: object) -> str:
    """A field's text; a list or mapping is an error that says what to write instead."""
    if isinstance(value, list | dict):
        hint = ("write one SPDX expression, e.g. `CC-BY-4.0 OR MIT` (the licensee picks one) "
                "or `CC-BY-4.0 AND MIT` (both apply)" if name == "license" else
                "write it as one line of text")
        raise ValueError(f"{path.name}: {name} is a {type(value).__name__} "
                         f"({value!r}); {hint}")
    return str(value or "").strip()
