"""The license table of shared/domain.md, row by row, and free-text normalisation."""

from __future__ import annotations

import pytest

from bioart_pipeline.licensing.embedded import findings
from bioart_pipeline.licensing.rules import (
    ALLOWED,
    REFUSED,
    SIGNOFF,
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


def _prov(author: str = "Someone", **embedded: str) -> dict[str, str]:
    return {"author": author, **embedded}


def test_embedded_prohibition_and_contradiction_refuse_commercial_use() -> None:
    def verdict(use: str, **embedded: str) -> str:
        return judge("CC0-1.0", use, STUDIO, author="Someone",
                     embedded=findings(_prov(**embedded), "CC0-1.0", STUDIO, use)).status

    assert verdict("commercial", xmp_data_mining="DMI-PROHIBITED-AIMLTRAINING") == REFUSED
    assert verdict("internal", xmp_data_mining="DMI-PROHIBITED-AIMLTRAINING") == REFUSED
    notice = {"exif_copyright": "(c) 2024 Someone. All rights reserved."}
    assert verdict("commercial", **notice) == REFUSED
    assert verdict("internal", **notice) == SIGNOFF
    assert findings(_prov("A", xmp_rights="Licensed CC BY-NC 4.0"), "CC-BY-4.0", STUDIO,
                    "commercial")
    assert not findings(_prov("A", xmp_rights="CC BY 4.0"), "CC-BY-4.0", STUDIO, "commercial")


@pytest.mark.parametrize(("author", "embedded", "conflict"), [
    ("Cellula Studio", {"exif_artist": "Other Agency Ltd"}, "EXIF Artist names 'Other Agency Ltd'"),
    ("Cellula Studio", {"xmp_creator": "Cellula Studio",
                        "xmp_rights": "© 2025 Cellula Studio Ltd. All rights reserved."}, ""),
    ("Cellula Studio", {"xmp_rights": "© 2024 Other Agency Ltd. All rights reserved."},
     "names 'Other Agency Ltd'"),
    ("Mara Lindqvist", {"xmp_rights": "This work is licensed under CC BY 4.0"}, ""),
    ("Mara Lindqvist", {"exif_copyright": "Copyright (c) 2023-2024"}, ""),
    ("", {"png_author": "Jo Bloggs"}, "the sidecar's author is '(none)'"),
    ("Cellula Studio", {"iptc_byline": "Cellula Studio Nightshade"},
     "IPTC By-line names 'Cellula Studio Nightshade'"),
])
def test_embedded_authorship_against_the_sidecar(author: str, embedded: dict[str, str],
                                                 conflict: str) -> None:
    licence = "CC-BY-4.0" if "CC BY" in str(embedded) else "LicenseRef-X"
    reasons = " ".join(v.reason for v in findings(_prov(author, **embedded), licence, STUDIO,
                                                  "commercial"))
    assert (conflict in reasons and reasons) if conflict else reasons == ""
