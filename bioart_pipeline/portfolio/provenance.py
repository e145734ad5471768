"""Who made an image, where it came from, under which license: sidecars and embedded metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from bioart_pipeline.common.files import read_yaml_mapping

SIDECAR_SUFFIX = ".license.yaml"
FOLDER_DEFAULT = "_default.license.yaml"
PROVENANCE_FIELDS = ("license", "author", "source", "retrieved", "license_url", "attribution")

_EXIF_ARTIST = 0x013B
_EXIF_COPYRIGHT = 0x8298
# Column -> local name of the XMP property (Pillow's getxmp drops the namespace prefixes).
_XMP_PROPERTIES = {
    "xmp_creator": "creator",  # dc:creator
    "xmp_rights": "rights",  # dc:rights
    "xmp_usage_terms": "UsageTerms",  # xmpRights:UsageTerms
    "xmp_web_statement": "WebStatement",  # xmpRights:WebStatement
    "xmp_data_mining": "DataMining",  # plus:DataMining
}
EMBEDDED_FIELDS = ("exif_artist", "exif_copyright", *_XMP_PROPERTIES, "xmp_unreadable")
LIST_SEPARATOR = "; "  # several creators or languages in one table cell


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
    return {name: str(raw.get(name) or "").strip() for name in PROVENANCE_FIELDS}


def read_embedded(image: Image.Image) -> dict[str, str]:
    """Rights statements embedded in the file (EXIF and XMP); they can contradict a sidecar.
    XMP is parsed by Pillow (with defusedxml); a packet it cannot parse is reported in
    `xmp_unreadable`, since what it says cannot then be checked."""
    exif = image.getexif()
    found = {"exif_artist": _text(exif.get(_EXIF_ARTIST)),
             "exif_copyright": _text(exif.get(_EXIF_COPYRIGHT)), "xmp_unreadable": ""}
    try:
        xmp = image.getxmp()
    except Exception as exc:  # noqa: BLE001 - any parser error means "cannot be checked"
        xmp = {}
        found["xmp_unreadable"] = f"{type(exc).__name__}: {exc}"[:200]
    for column, name in _XMP_PROPERTIES.items():
        found[column] = LIST_SEPARATOR.join(dict.fromkeys(_xmp_values(xmp, name)))
    return found


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value or "").strip().strip("\x00")


def _xmp_values(node: Any, name: str) -> list[str]:
    """Every value of property `name` anywhere in Pillow's XMP tree: a plain string, an
    rdf:Seq/Bag/Alt list of items, or a language-tagged item ({"lang": ..., "text": ...})."""
    if isinstance(node, list):
        return [v for item in node for v in _xmp_values(item, name)]
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        found += _strings(value) if key == name else _xmp_values(value, name)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        if "text" in value or "resource" in value:
            return _strings(value.get("text") or value.get("resource"))
        return [s for item in value.values() for s in _strings(item)]
    return []
