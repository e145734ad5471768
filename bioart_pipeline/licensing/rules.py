"""License rules in one place: normalise free text to an SPDX expression, then judge an image
for a use.

Verdicts: "allowed", "needs-signoff" (trains only once a person signs it off) and "refused"
(must not train this LoRA). Own work is what the studio file declares (licensing/studio.py),
never a guess from a licence's name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from license_expression import ExpressionError, LicenseWithExceptionSymbol, get_spdx_licensing

from bioart_pipeline.licensing.studio import STUDIO_FILE, Studio

ALLOWED, SIGNOFF, REFUSED = "allowed", "needs-signoff", "refused"
_RANK = {ALLOWED: 0, SIGNOFF: 1, REFUSED: 2}
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-PDM-1.0": "https://creativecommons.org/publicdomain/mark/1.0/",
}
_SPDX = get_spdx_licensing()
_CC = re.compile(r"^CC[\s_-]*BY((?:[\s_-]*(?:NC|ND|SA))*)(?:[\s_-]*(\d(?:\.\d)?))?$")
# Words that name no licence: each becomes a LicenseRef that only the studio file can permit.
_NOT_LICENSES = {"PROPRIETARY": "LicenseRef-Proprietary", "OWN WORK": "LicenseRef-OwnWork",
                 "STUDIO OWN WORK": "LicenseRef-OwnWork",
                 "ALL RIGHTS RESERVED": "LicenseRef-AllRightsReserved"}
_OPERATORS = re.compile(r"(\s+(?:AND|OR|WITH)\s+|[()])")  # SPDX operators are upper case
_ID = re.compile(r"^[A-Za-z0-9.+-]+$")


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    own_work: bool = False  # the studio file declares it the studio's own


def normalize_license(text: str) -> str:
    """SPDX expression for free text ("CC BY 4.0" -> "CC-BY-4.0", "Proprietary" ->
    "LicenseRef-Proprietary"); "" when the text is empty. Expressions keep their operators."""
    parts = _OPERATORS.split(" ".join(text.strip().split()))
    out = [part.strip() if _OPERATORS.fullmatch(part) else _normalize_id(part)
           for part in parts if part.strip()]
    return re.sub(r"\( | \)", lambda m: m.group(0).strip(), " ".join(out))


def _normalize_id(raw: str) -> str:
    raw = raw.strip()
    if raw.lower().startswith("licenseref-"):
        return "LicenseRef-" + raw[len("licenseref-"):]
    upper = raw.upper().replace("LICENSE", "").replace("INTERNATIONAL", "").strip(" .")
    upper = re.sub(r"^CREATIVE COMMONS\s+", "CC ", upper)
    upper = upper.replace("ATTRIBUTION", "BY").replace("NONCOMMERCIAL", "NC")
    upper = upper.replace("NODERIVATIVES", "ND").replace("SHAREALIKE", "SA")
    if upper in _NOT_LICENSES:
        return _NOT_LICENSES[upper]
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
    return _spdx_id(raw) or raw


@lru_cache(maxsize=1024)
def _spdx_id(key: str) -> str:
    """The SPDX list's spelling of `key` ("mit" -> "MIT"); "" when it is not on the list."""
    if not _ID.match(key):
        return ""
    info = _SPDX.validate(key)
    return "" if info.errors else info.normalized_expression


def license_url(spdx: str) -> str:
    match = re.match(r"^CC-BY((?:-(?:NC|ND|SA))*)-(\d\.\d)$", spdx)
    if match:
        return f"https://creativecommons.org/licenses/by{match.group(1).lower()}/{match.group(2)}/"
    return LICENSE_URLS.get(spdx, "")


@dataclass(frozen=True)
class _Image:
    """What a licence is judged against, besides its id."""

    intended_use: str
    studio: Studio
    author: str
    source: str
    link: str


def judge(license_expression: str, intended_use: str, studio: Studio, *, author: str = "",
          source: str = "", link: str = "", embedded: Sequence[Verdict] = ()) -> Verdict:
    """The verdict for one image under the spec's intended use: the worst of its licence's
    verdict and what the rights embedded in the file say (`embedded`, licensing/embedded.py).
    With OR the best licence choice counts (the licensee picks one); with AND every licence
    must allow it. The reason names every finding, the worst first."""
    licence = _licence_verdict(license_expression, _Image(intended_use, studio, author, source,
                                                          link))
    if embedded:
        licence = Verdict(licence.status, f"sidecar: {licence.reason}", licence.own_work)
    ranked = sorted([licence, *embedded], key=lambda v: -_RANK[v.status])
    status = ranked[0].status
    reason = "; ".join(dict.fromkeys(v.reason for v in ranked))
    return Verdict(status, reason, own_work=licence.own_work and status == ALLOWED)


def _licence_verdict(license_expression: str, image: _Image) -> Verdict:
    if not license_expression:
        return Verdict(REFUSED, "no license recorded (add a .license.yaml sidecar)")
    try:
        tree = _SPDX.parse(license_expression, validate=False)
    except ExpressionError as exc:
        return Verdict(REFUSED, f"{license_expression!r} is not a valid SPDX licence expression "
                                f"({exc})")
    return _evaluate(tree, image)


def _evaluate(node: object, image: _Image) -> Verdict:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _evaluate(node.license_symbol, image)
    if isinstance(node, (_SPDX.OR, _SPDX.AND)):
        verdicts = [_evaluate(arg, image) for arg in node.args]
        pick = min if isinstance(node, _SPDX.OR) else max
        return pick(verdicts, key=lambda v: _RANK[v.status])
    return _by_license(node.key, image)


def _by_license(key: str, image: _Image) -> Verdict:
    studio = image.studio
    if key in studio.own_licenses:
        if studio.is_studio_author(image.author):
            return Verdict(ALLOWED, f"studio's own work ({key})", own_work=True)
        return Verdict(REFUSED, f"{key} is the studio's own licence, but the author "
                                f"{image.author or '(none)'!r} is not one of the studio's "
                                f"authors in {STUDIO_FILE}")
    if key in studio.permitted_licenses:
        return Verdict(ALLOWED, f"{key}: terms allow training "
                                f"({studio.permitted_licenses[key]})")
    family = key.removeprefix("LicenseRef-").upper()
    if key.startswith("LicenseRef-") and not family.startswith("CC-BY"):
        return Verdict(REFUSED, _unknown_terms(key, image))
    if not family.startswith("CC-BY") and not _spdx_id(key):
        return Verdict(REFUSED, f"{key!r} is not an SPDX licence id: write one from "
                                "https://spdx.org/licenses/ or a LicenseRef- declared in "
                                f"{STUDIO_FILE}")
    return _creative_commons(key, family, image)


def _unknown_terms(key: str, image: _Image) -> str:
    whose = f" from {image.author}" if image.author else ""
    if not image.studio.declared:
        return (f"{key}{whose}: no {STUDIO_FILE} declares the studio's own licences, so this is "
                "third-party or proprietary terms not known to allow training")
    return (f"{key}{whose}: third-party or proprietary terms not known to allow training (the "
            f"studio's own licences are {list(image.studio.own_licenses)}; record terms that "
            f"allow training under permitted_licenses in {STUDIO_FILE})")


def _creative_commons(key: str, family: str, image: _Image) -> Verdict:
    if key in ("CC0-1.0", "CC-PDM-1.0"):
        return Verdict(ALLOWED, "public domain")
    if not family.startswith("CC-BY"):
        return Verdict(REFUSED, f"{key}: not a licence judged here for training images; if its "
                                f"terms allow training, list it under permitted_licenses in "
                                f"{STUDIO_FILE}")
    missing = [n for n, v in (("author", image.author), ("source", image.source),
                              ("license link", image.link)) if not v]
    if "-ND" in family:
        return Verdict(REFUSED, f"{key}: no-derivatives; training use is disputed, refused by "
                                "default")
    if "-NC" in family and image.intended_use != "non-commercial":
        return Verdict(REFUSED, f"{key}: non-commercial license, this LoRA's use is "
                                f"{image.intended_use}")
    if missing:
        return Verdict(REFUSED, f"{key} requires attribution; missing {', '.join(missing)}")
    if "-NC" in family:
        return Verdict(ALLOWED, f"{key}: non-commercial use only")
    if "-SA" in family:
        return Verdict(SIGNOFF, f"{key}: share-alike may carry over to the LoRA; needs sign-off")
    return Verdict(ALLOWED, f"{key}: attribution required (see ATTRIBUTION.md)")
