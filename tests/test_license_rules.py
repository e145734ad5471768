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

ATTRIBUTED = {"author": "A. Author", "source": "https://example.org/x",
              "link": "https://creativecommons.org/licenses/by/4.0/"}


@pytest.mark.parametrize(("text", "spdx"), [
    ("CC BY 4.0", "CC-BY-4.0"), ("cc-by-sa 4.0", "CC-BY-SA-4.0"),
    ("CC BY-NC 4.0", "CC-BY-NC-4.0"), ("CC-BY-NC-ND-4.0", "CC-BY-NC-ND-4.0"),
    ("Creative Commons Attribution 4.0 International", "CC-BY-4.0"),
    ("CC0 1.0", "CC0-1.0"), ("CC0", "CC0-1.0"), ("Public Domain Mark 1.0", "CC-PDM-1.0"),
    ("LicenseRef-CellulaStudio-OwnWork", "LicenseRef-CellulaStudio-OwnWork"),
    ("own work", "LicenseRef-OwnWork"), ("", ""), ("CC BY", "LicenseRef-CC-BY-unversioned"),
])
def test_normalize(text: str, spdx: str) -> None:
    assert normalize_license(text) == spdx


@pytest.mark.parametrize(("spdx", "use", "status"), [
    ("LicenseRef-CellulaStudio-OwnWork", "commercial", ALLOWED),
    ("CC0-1.0", "commercial", ALLOWED), ("CC-PDM-1.0", "commercial", ALLOWED),
    ("CC-BY-4.0", "commercial", ALLOWED),
    ("CC-BY-SA-4.0", "commercial", SIGNOFF),
    ("CC-BY-NC-4.0", "commercial", REFUSED), ("CC-BY-NC-4.0", "internal", REFUSED),
    ("CC-BY-NC-4.0", "non-commercial", ALLOWED),
    ("CC-BY-ND-4.0", "commercial", REFUSED), ("CC-BY-NC-ND-4.0", "non-commercial", REFUSED),
    ("All rights reserved", "commercial", REFUSED), ("", "commercial", REFUSED),
    ("LicenseRef-Stock-Scraped", "commercial", REFUSED),
])
def test_license_table(spdx: str, use: str, status: str) -> None:
    assert judge(spdx, use, **ATTRIBUTED).status == status


def test_cc_by_without_attribution_details_is_refused() -> None:
    verdict = judge("CC-BY-4.0", "commercial", author="", source="https://e.org", link="x")
    assert verdict.status == REFUSED and "author" in verdict.reason


def test_embedded_prohibition_and_contradiction_refuse_commercial_use() -> None:
    assert judge("CC0-1.0", "commercial", data_mining="DMI-PROHIBITED-AIMLTRAINING"
                 ).status == REFUSED
    conflict = embedded_conflict("CC0-1.0", ["(c) 2024 Someone. All rights reserved."])
    assert conflict
    assert judge("CC0-1.0", "commercial", embedded_conflict=conflict).status == REFUSED
    assert judge("CC0-1.0", "internal", embedded_conflict=conflict).status == SIGNOFF
    assert embedded_conflict("CC-BY-4.0", ["Licensed CC BY-NC 4.0"]) != ""
    assert embedded_conflict("CC-BY-4.0", ["CC BY 4.0"]) == ""
