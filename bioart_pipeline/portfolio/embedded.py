"""Rights carried inside an image file, each carrier read with the library made for it:
EXIF (Pillow), IPTC-IIM (Pillow's IptcImagePlugin), PNG text chunks (Pillow), XMP (Pillow's
parser over defusedxml, namespaces kept) and C2PA manifests (c2pa-python's Reader).

Every value is text in the raw table, one column per property (several values joined by
LIST_SEPARATOR), so an audit shows exactly what the file said; licensing/embedded.py judges
them. Text is decoded by the encoding its carrier declares (see `_repaired`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from PIL import Image, IptcImagePlugin, PngImagePlugin

LIST_SEPARATOR = "; "  # several creators or languages in one table cell

_EXIF_ARTIST, _EXIF_COPYRIGHT, _EXIF_XP_AUTHOR = 0x013B, 0x8298, 0x9C9D
# IPTC-IIM datasets (record 2) -> column
_IPTC = {(2, 80): "iptc_byline", (2, 116): "iptc_copyright", (2, 110): "iptc_credit",
         (2, 115): "iptc_source", (2, 40): "iptc_special_instructions"}
_IPTC_CHARSET = (1, 90)
_IPTC_UTF8 = b"\x1b%G"  # ISO 2022 escape for UTF-8, the only declaration in common use
# PNG text keywords (tEXt, zTXt, iTXt) -> column; keywords of the PNG specification
_PNG = {"Author": "png_author", "Copyright": "png_copyright", "Disclaimer": "png_disclaimer",
        "Source": "png_source", "Comment": "png_comment"}
# Chunks that image generators write: their presence says a model drew the picture.
PNG_GENERATORS = {"parameters": "Automatic1111 / Forge", "prompt": "ComfyUI",
                  "workflow": "ComfyUI", "invokeai_metadata": "InvokeAI",
                  "sd-metadata": "InvokeAI", "Dream": "InvokeAI"}

_DC = "http://purl.org/dc/elements/1.1/"
_XMP_RIGHTS = "http://ns.adobe.com/xap/1.0/rights/"
_PLUS = "http://ns.useplus.org/ldf/xmp/1.0/"
TDMREP = "http://www.w3.org/ns/tdmrep/"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
# column -> the XMP properties ({namespace}local name) it collects, wherever they appear
_XMP = {
    "xmp_creator": [f"{{{_DC}}}creator", f"{{{_PLUS}}}ImageCreatorName"],
    "xmp_rights": [f"{{{_DC}}}rights"],
    "xmp_rights_owner": [f"{{{_XMP_RIGHTS}}}Owner", f"{{{_PLUS}}}CopyrightOwnerName"],
    "xmp_usage_terms": [f"{{{_XMP_RIGHTS}}}UsageTerms"],
    "xmp_web_statement": [f"{{{_XMP_RIGHTS}}}WebStatement"],
    "xmp_data_mining": [f"{{{_PLUS}}}DataMining"],
    "xmp_other_constraints": [f"{{{_PLUS}}}OtherConstraints"],
    "xmp_tdm_reservation": [f"{{{TDMREP}}}reservation"],
    "xmp_tdm_policy": [f"{{{TDMREP}}}policy"],
    "xmp_digital_source_type": [f"{{{_IPTC_EXT}}}DigitalSourceType"],
}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# Formats c2pa-python reads (of those Pillow opens)
_C2PA_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
              "TIFF": "image/tiff", "GIF": "image/gif"}
_TRAINING_MINING = ("cawg.training-mining", "c2pa.training-mining")

EMBEDDED_FIELDS = (
    "exif_artist", "exif_copyright", *_IPTC.values(), *_PNG.values(), "png_generator",
    *_XMP, "xmp_unreadable", "c2pa_state", "c2pa_signer", "c2pa_failures",
    "c2pa_training_mining", "c2pa_digital_source_types",
)


def read_embedded(image: Image.Image, data: bytes) -> dict[str, str]:
    """Every rights statement embedded in the opened `image` (whose file bytes are `data`).
    A carrier that cannot be parsed is reported (xmp_unreadable, c2pa_state "unreadable: ..."),
    since what it says cannot then be checked."""
    return {**dict.fromkeys(EMBEDDED_FIELDS, ""), **_exif(image), **_iptc(image),
            **_png_text(image), **_xmp(image), **_c2pa(image.format or "", data)}


def _join(values: Iterable[str]) -> str:
    return LIST_SEPARATOR.join(dict.fromkeys(v for v in values if v))


def _clean(text: str) -> str:
    return text.replace("\x00", "").strip()


def _repaired(text: str) -> str:
    """Text that a decoder read as Latin-1 (EXIF's ASCII tags, PNG tEXt and zTXt chunks) while
    the writer stored UTF-8, as most tools do: "Â© Studio" -> "© Studio". Latin-1 text that is
    not valid UTF-8 as bytes (a genuine "©" alone) stays as it is."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text  # already decoded beyond Latin-1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


def _exif(image: Image.Image) -> dict[str, str]:
    exif = image.getexif()
    artists = [_exif_text(exif.get(_EXIF_ARTIST))]
    xp_author = exif.get(_EXIF_XP_AUTHOR)  # Windows "Authors": UTF-16LE bytes
    if isinstance(xp_author, bytes | tuple):
        artists.append(_clean(bytes(xp_author).decode("utf-16-le", "replace")))
    return {"exif_artist": _join(artists),
            "exif_copyright": _exif_text(exif.get(_EXIF_COPYRIGHT))}


def _exif_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return _repaired(_clean(str(value or "")))


def _iptc(image: Image.Image) -> dict[str, str]:
    try:
        records = IptcImagePlugin.getiptcinfo(image) or {}
    except (SyntaxError, ValueError, OSError):  # a damaged IIM block: nothing readable in it
        return {}
    declared_utf8 = _values(records.get(_IPTC_CHARSET)) == [_IPTC_UTF8]
    return {column: _join(_iptc_text(v, declared_utf8) for v in _values(records.get(key)))
            for key, column in _IPTC.items()}


def _values(value: bytes | list[bytes] | None) -> list[bytes]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _iptc_text(value: bytes, declared_utf8: bool) -> str:
    """IIM text in the character set that record 1:90 declares; without a declaration, UTF-8
    when the bytes are valid UTF-8, else Windows-1252 (what older Photoshop wrote)."""
    if declared_utf8:
        return _clean(value.decode("utf-8", "replace"))
    try:
        return _clean(value.decode("utf-8"))
    except UnicodeDecodeError:
        return _clean(value.decode("cp1252", "replace"))


def _png_text(image: Image.Image) -> dict[str, str]:
    if image.format != "PNG":
        return {}
    try:
        chunks = image.text  # decodes the file: chunks after the pixels count too
    except Exception:  # noqa: BLE001 - truncated data: the chunks read before it still count
        chunks = {k: v for k, v in image.info.items() if isinstance(v, str)}
    found = {column: _png_value(chunks.get(key, "")) for key, column in _PNG.items()}
    found["png_generator"] = _join(f"{key} ({PNG_GENERATORS[key]})" for key in chunks
                                   if key in PNG_GENERATORS)
    return found


def _png_value(value: str) -> str:
    # iTXt is UTF-8 by the PNG specification; tEXt and zTXt are Latin-1
    return _clean(value if isinstance(value, PngImagePlugin.iTXt) else _repaired(value))


def _xmp(image: Image.Image) -> dict[str, str]:
    try:
        tree = image.getxmp(strip_namespaces=False)
    except Exception as exc:  # noqa: BLE001 - any parser error means "cannot be checked"
        return {"xmp_unreadable": f"{type(exc).__name__}: {exc}"[:200]}
    return {column: _join(v for name in names for v in _xmp_values(tree, name))
            for column, names in _XMP.items()}


def _xmp_values(node: Any, name: str) -> list[str]:
    """Every value of property `name` anywhere in Pillow's XMP tree: an attribute or element
    with a plain string, an rdf:Seq/Bag/Alt of items, a language-tagged item, or a struct."""
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
        return [_clean(value)] if _clean(value) else []
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for key, item in value.items() if key != _XML_LANG for s in _strings(item)]
    return []


def _c2pa(image_format: str, data: bytes) -> dict[str, str]:
    mime = _C2PA_MIME.get(image_format)
    if mime is None or not data:
        return {}
    import c2pa  # its native library loads only where images are scanned

    try:
        with c2pa.Reader(mime, io.BytesIO(data)) as reader:
            state, store = reader.get_validation_state(), json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return {}
    except c2pa.C2paError as exc:
        return {"c2pa_state": f"unreadable: {type(exc).__name__}: {exc}"[:200]}
    return {"c2pa_state": state or "unknown", **_c2pa_claims(store)}


def _c2pa_claims(store: dict[str, Any]) -> dict[str, str]:
    """What the manifest store says about rights and origin: the active manifest's signer,
    every validation failure, and the training-mining entries and digital source types of every
    manifest in the history (an ingredient's terms and origin carry over to what was made
    from it)."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest"), {})
    signature = active.get("signature_info") or {}
    signer = " / ".join(filter(None, (signature.get("common_name"), signature.get("issuer"))))
    failures = [s.get("code", "") for s in store.get("validation_status") or []]
    mining, sources = [], []
    for manifest in manifests.values():
        for assertion in manifest.get("assertions") or []:
            label, data = assertion.get("label", ""), assertion.get("data") or {}
            if label in _TRAINING_MINING:
                mining += [_mining_entry(name, entry) for name, entry in
                           (data.get("entries") or {}).items()]
            elif label.startswith("c2pa.actions"):
                sources += [a.get("digitalSourceType", "") for a in data.get("actions") or []]
    return {"c2pa_signer": signer, "c2pa_failures": _join(failures),
            "c2pa_training_mining": _join(mining), "c2pa_digital_source_types": _join(sources)}


def _mining_entry(name: str, entry: Any) -> str:
    entry = entry if isinstance(entry, dict) else {}
    constraint = entry.get("constraint_info") or ""
    return f"{name}={entry.get('use', '?')}" + (f" ({constraint})" if constraint else "")
