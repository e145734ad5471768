"""The license table of shared/domain.md, row by row, and free-text normalisation."""

from __future__ import annotations

import pytest

from bioart_pipeline.licensing.rules import (
    ALLOWED,
    REFUSED,
    SIGNOFF,
    embedded_conflict,
    judge,
    normalize_license,
)
from bioart_pipeline.licensing.studio import Studio

STUDIO = Studio(name="Cellula", authors=("Cellula Studio",),
                own_licenses=("LicenseRef-CellulaStudio-OwnWork",), declared=True)

ATTRIBUTED = {"author": "A. Author", "source": "https://example.org/x",
              "link": "https://creativecommons.org/licenses/by/4.0/"}


@pytest.mark.parametrize(("text", "spdx"), [
    ("CC BY 4.0", "CC-BY-4.0"), ("cc-by-sa 4.0", "CC-BY-SA-4.0"),
    ("CC BY-NC 4.0", "CC-BY-NC-4.0"), ("CC-BY-NC-ND-4.0", "CC-BY-NC-ND-4.0"),
    ("Creative Commons Attribution 4.0 International", "CC-BY-4.0"),
    ("CC0 1.0", "CC0-1.0"), ("CC0", "CC0-1.0"), ("Public Domain Mark 1.0", "CC-PDM-1.0"),
    ("LicenseRef-CellulaStudio-OwnWork", "LicenseRef-CellulaStudio-OwnWork"),
    ("own work", "LicenseRef-OwnWork"), ("", ""), ("CC BY", "LicenseRef-CC-BY-unversioned"),
    ("Proprietary", "LicenseRef-Proprietary"), ("All rights reserved",
                                                "LicenseRef-AllRightsReserved"),
    ("mit", "MIT"), ("CC BY 4.0 OR CC0", "CC-BY-4.0 OR CC0-1.0"),
    ("(cc-by-sa-4.0 AND CC BY 4.0)", "(CC-BY-SA-4.0 AND CC-BY-4.0)"),
])
def test_normalize(text: str, spdx: str) -> None:
    assert normalize_license(text) == spdx


@pytest.mark.parametrize(("spdx", "use", "status"), [
    ("CC0-1.0", "commercial", ALLOWED), ("CC-PDM-1.0", "commercial", ALLOWED),
    ("CC-BY-4.0", "commercial", ALLOWED),
    ("CC-BY-SA-4.0", "commercial", SIGNOFF),
    ("CC-BY-NC-4.0", "commercial", REFUSED), ("CC-BY-NC-4.0", "internal", REFUSED),
    ("CC-BY-NC-4.0", "non-commercial", ALLOWED),
    ("CC-BY-ND-4.0", "commercial", REFUSED), ("CC-BY-NC-ND-4.0", "non-commercial", REFUSED),
    ("LicenseRef-AllRightsReserved", "commercial", REFUSED), ("", "commercial", REFUSED),
    ("LicenseRef-Stock-Scraped", "commercial", REFUSED),
    ("CC-BY-NC-4.0 OR CC-BY-4.0", "commercial", ALLOWED),
    ("CC-BY-4.0 AND CC-BY-NC-4.0", "commercial", REFUSED),
    ("CC-BY-4.0 AND CC-BY-SA-4.0", "commercial", SIGNOFF),
    ("NotALicence-1.0", "commercial", REFUSED), ("CC-BY-4.0 OR OR", "commercial", REFUSED),
])
def test_license_table(spdx: str, use: str, status: str) -> None:
    assert judge(spdx, use, STUDIO, **ATTRIBUTED).status == status


def test_cc_by_without_attribution_details_is_refused() -> None:
    verdict = judge("CC-BY-4.0", "commercial", STUDIO, author="", source="https://e.org",
                    link="x")
    assert verdict.status == REFUSED and "author" in verdict.reason


def test_embedded_prohibition_and_contradiction_refuse_commercial_use() -> None:
    assert judge("CC0-1.0", "commercial", STUDIO, data_mining="DMI-PROHIBITED-AIMLTRAINING"
                 ).status == REFUSED
    conflict = embedded_conflict("CC0-1.0", "Someone", [],
                                 ["(c) 2024 Someone. All rights reserved."])
    assert "All rights reserved" in conflict
    assert judge("CC0-1.0", "commercial", STUDIO, embedded_conflict=conflict).status == REFUSED
    assert judge("CC0-1.0", "internal", STUDIO, embedded_conflict=conflict).status == SIGNOFF
    assert embedded_conflict("CC-BY-4.0", "A", [], ["Licensed CC BY-NC 4.0"]) != ""
    assert embedded_conflict("CC-BY-4.0", "A", [], ["CC BY 4.0"]) == ""


@pytest.mark.parametrize(("author", "creators", "notices", "conflict"), [
    ("Cellula Studio", ["Other Agency Ltd"], [], "'Other Agency Ltd' as creator"),
    ("Cellula Studio", ["Cellula Studio"], ["© 2025 Cellula Studio Ltd. All rights reserved."],
     ""),
    ("Cellula Studio", [], ["© 2024 Other Agency Ltd. All rights reserved."],
     "names 'Other Agency Ltd'"),
    ("Mara Lindqvist", [], ["This work is licensed under CC BY 4.0"], ""),
    ("Mara Lindqvist", [], ["Copyright (c) 2023-2024"], ""),
    ("", ["Jo Bloggs"], [], "sidecar's author is '(none)'"),
])
def test_embedded_authorship_against_the_sidecar(author: str, creators: list[str],
                                                 notices: list[str], conflict: str) -> None:
    found = embedded_conflict("CC-BY-4.0" if "CC BY" in str(notices) else "LicenseRef-X",
                              author, creators, notices)
    assert (conflict in found and found) if conflict else found == ""
