"""The public training-data summary: the template's fields, each source in its template section
with exact counts per licence, the opt-out protocols checked, what did not train and why, and
no file listed."""

from __future__ import annotations

import re

import pandas as pd

from bioart_pipeline.licensing.embedded import OPT_OUT_PROTOCOLS
from bioart_pipeline.licensing.studio import Studio
from bioart_pipeline.release.training_summary import SummaryHeader, size_band, training_summary

STUDIO = Studio(name="Cellula Studio", authors=("Cellula Studio",),
                own_licenses=("LicenseRef-Cellula-OwnWork",),
                permitted_licenses={"LicenseRef-StockCo": "contract 2026-04"}, declared=True,
                contact="licensing@cellula.example")
HEADER = SummaryHeader(model="cellula_cellstyle_32_30", spec_type="style",
                       base_model="stabilityai/sdxl@abc",
                       base_model_summary="https://huggingface.co/stabilityai/sdxl")


def _image(path: str, licence: str, author: str = "Cellula Studio", included: bool = True,
           source: str = "own work", **extra: str) -> dict:
    return {"path": path, "license": licence, "author": author, "included": included,
            "source": source, "retrieved": "2026-01-15", "caption_origin": "artist",
            "verdict_reason": "", "exclusion": "", "signed_off_by": "", "duplicate_of": "",
            "model_made": "", **extra}


MANIFEST = pd.DataFrame([
    _image("portfolio/own_1.png", "LicenseRef-Cellula-OwnWork"),
    _image("portfolio/own_2.png", "LicenseRef-Cellula-OwnWork", caption_origin="florence-2"),
    _image("portfolio/pd.png", "CC0-1.0", author="Anon", source="https://example.org/pd",
           retrieved="2026-02-03"),
    _image("portfolio/by.png", "CC-BY-4.0", author="Jo Bloggs", source="https://example.org/by"),
    _image("portfolio/stock.png", "LicenseRef-StockCo", author="StockCo",
           source="https://stock.example/123"),
    _image("portfolio/sa.png", "CC-BY-SA-4.0", author="Ann Other", signed_off_by="Jane Doe",
           source="sent by the author"),
    _image("portfolio/nc.png", "CC-BY-NC-4.0", author="Ann Other", included=False,
           verdict_reason="CC-BY-NC-4.0: non-commercial license, this LoRA's use is commercial",
           exclusion="licence: CC-BY-NC-4.0: non-commercial license, this LoRA's use is "
                     "commercial"),
    _image("portfolio/dmi.png", "CC-BY-4.0", author="Jo Bloggs", included=False,
           verdict_reason="training reserved in the file: XMP plus:DataMining DMI-PROHIBITED",
           exclusion="licence: training reserved in the file: XMP plus:DataMining "
                     "DMI-PROHIBITED"),
    _image("portfolio/own_1_copy.png", "LicenseRef-Cellula-OwnWork", included=False,
           duplicate_of="portfolio/own_1.png",
           exclusion="duplicate of portfolio/own_1.png"),
])


def _summary() -> tuple[str, dict[str, str]]:
    summary = training_summary(HEADER, MANIFEST, STUDIO, "cellula_style-v3", "2026-12-07")
    return summary, dict(re.findall(r"^- \*\*(.+?)\*\*: (.*)$", summary, re.M))


def test_each_source_sits_in_its_template_section() -> None:
    summary, fields = _summary()
    for row in ("| 2.6 other sources: the studio's own works | LicenseRef-Cellula-OwnWork | 2 |",
                "| 2.1 publicly available | CC0-1.0 | 1 |",
                "| 2.1 publicly available | CC-BY-4.0 | 1 |",
                "| 2.2.1 commercially licensed by rightsholders | LicenseRef-StockCo | 1 |",
                "| 2.2.2 private, from other third parties | CC-BY-SA-4.0 | 1 |"):
        assert row in summary
    assert fields["2.1 Publicly available datasets"].startswith(
        "yes: 2 works from public web pages")
    assert fields["2.1 Publicly available datasets"].endswith("CC0-1.0 (1), CC-BY-4.0 (1)")
    assert fields["2.2.1 Private datasets commercially licensed by rightsholders"].startswith(
        "yes: 1 work under licence terms")
    assert fields["2.2.2 Private datasets obtained from other third parties"].startswith(
        "yes: 1 work obtained from third parties")
    assert fields["2.6 Other sources of data"] == (
        "yes: 2 works made by the studio itself, under LicenseRef-Cellula-OwnWork (2)")
    assert fields["Third-party works"].startswith("4, ")
    assert fields["2.5 Synthetic data"] == "no"


def test_the_general_fields_are_the_templates() -> None:
    _, fields = _summary()
    assert fields["Provider name and contact details"] == (
        "Cellula Studio, licensing@cellula.example")
    assert fields["Versioned model name"].startswith("cellula_cellstyle_32_30, release "
                                                     "cellula_style-v3")
    assert "https://huggingface.co/stabilityai/sdxl" in fields["Model dependencies"]
    assert fields["Date of placement on the market"] == "2026-12-07"
    assert fields["Training data size"] == "Less than 1 million images (6 images)"
    assert fields["Latest date of data collection"].startswith("2026-02-03;")
    assert fields["Types of content"].endswith("5 written by the artist, 1 generated "
                                               "(florence-2)")
    assert fields["Signatory to the General-Purpose AI Code of Practice"] == (
        "not stated in studio.yaml")


def test_size_bands_are_worded_as_the_template() -> None:
    assert [size_band(n) for n in (0, 999_999, 1_000_000, 10**9)] == [
        "Less than 1 million images", "Less than 1 million images",
        "1 million to 1 billion images", "More than 1 billion images"]


def test_opt_outs_and_exclusions_are_reported_without_naming_files() -> None:
    summary, fields = _summary()
    assert fields["Refused for a reservation of rights embedded in the file"] == "1 image"
    assert all(f"  - {protocol}" in summary for protocol in OPT_OUT_PROTOCOLS)
    assert "robots.txt" in fields["Not checked"]
    assert ("- 1 image: licence: CC-BY-NC-4.0: non-commercial license, this LoRA's use is "
            "commercial") in summary
    assert "- 1 image: a copy or near-copy of another portfolio image" in summary
    for heading in ("## 1. General information", "## 2. List of data sources",
                    "## 3. Data processing aspects"):
        assert heading in summary
    assert "portfolio/" not in summary and ".png" not in summary
