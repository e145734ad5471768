"""Provenance from sidecars and embedded metadata, down to the manifest verdict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from PIL import Image, PngImagePlugin

from bioart_pipeline.licensing.manifest import attribution_markdown
from bioart_pipeline.licensing.studio import Studio
from tests.conftest import drawing, manifest_of

XMP_DMI = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
           'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>'
           '</rdf:RDF></x:xmpmeta>')


def _portfolio(root: Path) -> Path:
    folder = root / "portfolio"
    folder.mkdir()
    (folder / "_default.license.yaml").write_text(yaml.safe_dump(
        {"license": "LicenseRef-Studio-OwnWork", "author": "Studio", "source": "own work",
         "retrieved": "2026-01-01"}))
    for seed, name in enumerate(["own.png", "dmi.png", "contradiction.jpg", "by.png"]):
        (folder / f"{Path(name).stem}.txt").write_text(f"a cell number {seed}")
    drawing(1).save(folder / "own.png")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_DMI)
    drawing(2).save(folder / "dmi.png", pnginfo=info)
    exif = Image.Exif()
    exif[0x8298] = "(c) 2025 Stock Agency. All rights reserved."
    drawing(3).save(folder / "contradiction.jpg", exif=exif)
    (folder / "contradiction.jpg.license.yaml").write_text(yaml.safe_dump(
        {"license": "CC0 1.0", "author": "Someone", "source": "https://example.org/c"}))
    drawing(4).save(folder / "by.png")
    (folder / "by.png.license.yaml").write_text(yaml.safe_dump(
        {"license": "CC BY 4.0", "author": "A. Author", "source": "https://example.org/b",
         "attribution": "Cell by A. Author (example.org)"}))
    return folder


def _manifest(tmp_path: Path, use: str = "commercial") -> pd.DataFrame:
    studio = Studio(authors=("Studio",), own_licenses=("LicenseRef-Studio-OwnWork",),
                    declared=True)
    return manifest_of(tmp_path, _portfolio(tmp_path), studio, use)


def test_sidecar_and_folder_default(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    assert manifest.at["own.png", "license"] == "LicenseRef-Studio-OwnWork"
    assert manifest.at["by.png", "license"] == "CC-BY-4.0"
    assert manifest.at["by.png", "license_url"] == "https://creativecommons.org/licenses/by/4.0/"
    assert manifest.at["own.png", "caption"] == "trig, a cell number 0"


def test_data_mining_prohibition_refuses_the_image(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    assert manifest.at["dmi.png", "verdict"] == "refused"
    assert "DMI-PROHIBITED" in manifest.at["dmi.png", "verdict_reason"]
    assert not manifest.at["dmi.png", "included"]


def test_embedded_copyright_contradicting_the_sidecar_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    assert manifest.at["contradiction.jpg", "verdict"] == "refused"
    assert "All rights reserved" in manifest.at["contradiction.jpg", "verdict_reason"]
    assert manifest.at["own.png", "included"] and manifest.at["by.png", "included"]


def test_attribution_file_credits_cc_by(tmp_path: Path) -> None:
    text = attribution_markdown(_manifest(tmp_path).reset_index(), "test")
    assert "Cell by A. Author (example.org)" in text and "CC-BY-4.0" in text
    assert "own.png" not in text
