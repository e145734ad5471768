"""Who made an image, where it came from, under which license: sidecars and embedded metadata."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

SIDECAR_SUFFIX = ".license.yaml"
FOLDER_DEFAULT = "_default.license.yaml"
PROVENANCE_FIELDS = ("license", "author", "source", "retrieved", "license_url", "attribution")

_EXIF_ARTIST = 0x013B
_EXIF_COPYRIGHT = 0x8298
_XMP_KEYS = {
    "xmp_rights": r"dc:rights",
    "xmp_usage_terms": r"xmpRights:UsageTerms",
    "xmp_web_statement": r"xmpRights:WebStatement",
    "xmp_data_mining": r"plus:DataMining",
}


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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"license sidecar {path.name} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"license sidecar {path.name} must be a YAML mapping")
    return {name: str(raw.get(name) or "").strip() for name in PROVENANCE_FIELDS}


def read_embedded(image: Image.Image) -> dict[str, str]:
    """Rights statements embedded in the file (EXIF and XMP); they can contradict a sidecar."""
    exif = image.getexif()
    found = {
        "exif_artist": _text(exif.get(_EXIF_ARTIST)),
        "exif_copyright": _text(exif.get(_EXIF_COPYRIGHT)),
    }
    xmp = _xmp_packet(image)
    for key, tag in _XMP_KEYS.items():
        found[key] = _xmp_value(xmp, tag)
    return found


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value or "").strip().strip("\x00")


def _xmp_packet(image: Image.Image) -> str:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _xmp_value(xmp: str, tag: str) -> str:
    """Value of an XMP property written as an attribute, an element, or an rdf:Alt/Seq list."""
    if not xmp:
        return ""
    attribute = re.search(rf'{tag}="([^"]*)"', xmp)
    if attribute:
        return attribute.group(1).strip()
    element = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", xmp, re.S)
    if not element:
        return ""
    inner = element.group(1)
    items = re.findall(r"<rdf:li[^>]*>(.*?)</rdf:li>", inner, re.S)
    resource = re.search(r'rdf:resource="([^"]*)"', element.group(0))
    if items:
        return "; ".join(i.strip() for i in items)
    return resource.group(1) if resource else re.sub(r"<[^>]+>", "", inner).strip()
