"""License rules in one place: normalise free text to SPDX ids, then judge an image for a use.

Verdicts: "allowed", "needs-signoff" (trains, but a human must sign the release off) and
"refused" (must not train this LoRA).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALLOWED, SIGNOFF, REFUSED = "allowed", "needs-signoff", "refused"
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
}
_CC = re.compile(r"^CC[\s_-]*BY((?:[\s_-]*(?:NC|ND|SA))*)(?:[\s_-]*(\d(?:\.\d)?))?$")
_NOT_LICENSES = ("ALL RIGHTS RESERVED", "COPYRIGHT", "STOCK", "SCRAPED", "UNKNOWN", "NONE")


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str


def normalize_license(text: str) -> str:
    """SPDX id for free text ("CC BY 4.0" -> "CC-BY-4.0"); "" when it names no license."""
    raw = " ".join(text.strip().split())
    if not raw:
        return ""
    if raw.lower().startswith("licenseref-"):
        return "LicenseRef-" + raw[len("licenseref-"):]
    upper = raw.upper().replace("LICENSE", "").replace("INTERNATIONAL", "").strip(" .")
    upper = re.sub(r"^CREATIVE COMMONS\s+", "CC ", upper)
    upper = upper.replace("ATTRIBUTION", "BY").replace("NONCOMMERCIAL", "NC")
    upper = upper.replace("NODERIVATIVES", "ND").replace("SHAREALIKE", "SA")
    if upper in ("OWN WORK", "PROPRIETARY", "STUDIO OWN WORK"):
        return "LicenseRef-OwnWork"
    if re.fullmatch(r"CC[\s_-]*(0|ZERO)([\s_-]*1\.0)?|PUBLIC DOMAIN DEDICATION", upper):
        return "CC0-1.0"
    if re.fullmatch(r"(CC[\s_-]*)?(PDM|PUBLIC DOMAIN( MARK)?)([\s_-]*1\.0)?", upper):
        return "CC-PDM-1.0"
    match = _CC.match(upper)
    if match:
        parts = re.findall(r"NC|ND|SA", match.group(1))
        version = match.group(2) or ""
        family = "-".join(["CC", "BY", *sorted(parts, key=["NC", "ND", "SA"].index)])
        return f"{family}-{version}" if version else f"LicenseRef-{family}-unversioned"
    return raw


def license_url(spdx: str) -> str:
    match = re.match(r"^CC-BY((?:-(?:NC|ND|SA))*)-(\d\.\d)$", spdx)
    if match:
        return f"https://creativecommons.org/licenses/by{match.group(1).lower()}/{match.group(2)}/"
    return LICENSE_URLS.get(spdx, "")


def judge(spdx: str, intended_use: str, *, author: str = "", source: str = "",
          link: str = "", embedded_conflict: str = "", data_mining: str = "") -> Verdict:
    """The verdict for one image under the spec's intended use."""
    # PLUS writes the value as a URI (http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-...).
    if "DMI-PROHIBITED" in data_mining.upper():
        return Verdict(REFUSED, f"embedded IPTC data-mining prohibition ({data_mining})")
    if embedded_conflict:
        status = REFUSED if intended_use == "commercial" else SIGNOFF
        return Verdict(status, f"embedded metadata contradicts the sidecar: {embedded_conflict}")
    base = _by_license(spdx, intended_use)
    if base.status != REFUSED and _needs_attribution(spdx):
        missing = [n for n, v in (("author", author), ("source", source), ("license link", link))
                   if not v]
        if missing:
            return Verdict(REFUSED, f"{spdx} requires attribution; missing {', '.join(missing)}")
    return base


def _by_license(spdx: str, intended_use: str) -> Verdict:
    family = spdx.removeprefix("LicenseRef-").upper()
    if not spdx:
        return Verdict(REFUSED, "no license recorded (add a .license.yaml sidecar)")
    if spdx.startswith("LicenseRef-") and "CC-BY" not in family:
        if any(word in family for word in _NOT_LICENSES):
            return Verdict(REFUSED, f"{spdx}: not a license that permits training")
        return Verdict(ALLOWED, "studio's own work")
    if spdx in ("CC0-1.0", "CC-PDM-1.0"):
        return Verdict(ALLOWED, "public domain")
    if "-ND" in family:
        return Verdict(REFUSED, f"{spdx}: no-derivatives; training use is disputed, refused by "
                                "default")
    if "-NC" in family:
        if intended_use == "non-commercial":
            return Verdict(ALLOWED, f"{spdx}: non-commercial use only")
        return Verdict(REFUSED, f"{spdx}: non-commercial license, this LoRA's use is "
                                f"{intended_use}")
    if "-SA" in family:
        return Verdict(SIGNOFF, f"{spdx}: share-alike may carry over to the LoRA; needs sign-off")
    if family.startswith("CC-BY"):
        return Verdict(ALLOWED, f"{spdx}: attribution required (see ATTRIBUTION.md)")
    return Verdict(REFUSED, f"{spdx or 'unknown'}: unknown or restrictive license")


def _needs_attribution(spdx: str) -> bool:
    return "CC-BY" in spdx


def embedded_conflict(sidecar_spdx: str, embedded_texts: list[str]) -> str:
    """Describe a contradiction between the sidecar license and rights embedded in the file."""
    for text in filter(None, embedded_texts):
        upper = text.upper()
        if "ALL RIGHTS RESERVED" in upper and not sidecar_spdx.startswith("LicenseRef-"):
            return f"file says {text!r}, sidecar says {sidecar_spdx or 'nothing'}"
        embedded = _license_in_text(upper)
        if embedded and embedded != sidecar_spdx:
            return f"file says {embedded}, sidecar says {sidecar_spdx or 'nothing'}"
    return ""


def _license_in_text(upper: str) -> str:
    match = re.search(r"CC[\s_-]*BY(?:[\s_-]*(?:NC|ND|SA))*(?:[\s_-]*\d\.\d)?|CC0(?:[\s_-]*1\.0)?",
                      upper)
    return normalize_license(match.group(0)) if match else ""
