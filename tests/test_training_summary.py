"""The public training-data summary: the template's sections, exact counts per source and
licence, how opt-outs were honoured, what did not train and why, and no file listed."""

from __future__ import annotations

import pandas as pd

from bioart_pipeline.licensing.studio import Studio
from bioart_pipeline.release.training_summary import SummaryHeader, training_summary

STUDIO = Studio(name="Cellula Studio", authors=("Cellula Studio",),
                own_licenses=("LicenseRef-Cellula-OwnWork",),
                permitted_licenses={"LicenseRef-StockCo": "contract 2026-04"}, declared=True)
HEADER = SummaryHeader(provider="Cellula Studio", model="cellula_cellstyle_32_30",
                       spec_type="style", base_model="stabilityai/sdxl@abc",
                       approved_on="2026-12-01")


def _image(path: str, licence: str, author: str = "Cellula Studio", included: bool = True,
           **extra: str) -> dict:
    return {"path": path, "license": licence, "author": author, "included": included,
            "caption_origin": "artist", "verdict_reason": "", "exclusion": "",
            "signed_off_by": "", "duplicate_of": "", **extra}


MANIFEST = pd.DataFrame([
    _image("portfolio/own_1.png", "LicenseRef-Cellula-OwnWork"),
    _image("portfolio/own_2.png", "LicenseRef-Cellula-OwnWork", caption_origin="florence-2"),
    _image("portfolio/pd.png", "CC0-1.0", author="Anon"),
    _image("portfolio/by.png", "CC-BY-4.0", author="Jo Bloggs"),
    _image("portfolio/stock.png", "LicenseRef-StockCo", author="StockCo"),
    _image("portfolio/sa.png", "CC-BY-SA-4.0", author="Ann Other", signed_off_by="Jane Doe"),
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


def test_sources_are_counted_by_category_and_licence() -> None:
    summary = training_summary(HEADER, MANIFEST, STUDIO)
    for row in ("| the studio's own works | LicenseRef-Cellula-OwnWork | 2 |",
                "| public domain | CC0-1.0 | 1 |",
                "| openly licensed works (Creative Commons) | CC-BY-4.0 | 1 |",
                "| third-party works under terms the studio recorded as allowing training | "
                "LicenseRef-StockCo | 1 |",
                "| third-party works cleared by a person's recorded sign-off | CC-BY-SA-4.0 | 1 |"):
        assert row in summary
    assert "**Size**: 6 images" in summary
    assert "1 written by the artist" not in summary and "5 written by the artist" in summary
    assert "**2.2 Private datasets from third parties**: 3 third-party works" in summary
    assert "**2.6 Other sources**: 2 of the studio's own works, and 1 public-domain" in summary


def test_opt_outs_and_exclusions_are_reported_without_naming_files() -> None:
    summary = training_summary(HEADER, MANIFEST, STUDIO)
    assert "Refused for a reservation of rights embedded in the file: 1." in summary
    assert "**2.5 Synthetic data**: none" in summary
    assert ("- 1 image(s): licence: CC-BY-NC-4.0: non-commercial license, this LoRA's use is "
            "commercial") in summary
    assert "- 1 image(s): a copy or near-copy of another portfolio image" in summary
    for heading in ("## 1. General information", "## 2. List of data sources",
                    "## 3. Data processing aspects"):
        assert heading in summary
    assert "portfolio/" not in summary and ".png" not in summary
