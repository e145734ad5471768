"""What the rights embedded in a file (portfolio/embedded.py) mean for training, whatever the
sidecar says. Each rule gives a finding; rules.judge takes the worst of them and the licence.

- Reservations refuse the image: a W3C TDMRep reservation (`tdm:reservation` = 1, the
  machine-readable opt-out that EU DSM Art. 4(3) makes binding), a C2PA training-mining
  assertion saying `notAllowed` for AI training or data mining, a PLUS `DMI-PROHIBITED-*`
  data-mining value, or a usage term or notice that reserves AI training or text-and-data
  mining ("Not for use in AI training", "TDM opt-out", "NoAI").
- Contradictions (a creator or copyright holder in EXIF, IPTC, PNG text or XMP that is not the
  sidecar's author; a notice naming another licence; XMP that cannot be parsed) refuse
  commercial use and need a sign-off otherwise.
- A sign-off is needed for a `constrained` training-mining entry, a usage term this module
  cannot classify, a C2PA manifest that is invalid or unreadable, and an image that declares a
  model made it (C2PA or IPTC digital source type trainedAlgorithmicMedia,
  compositeWithTrainedAlgorithmicMedia, algorithmicMedia; a generator's PNG chunk): such an
  image is never the studio's own hand-made work without a person's sign-off.
- A C2PA signer that is not on a trust list is recorded in the reason: the claims of an
  untrusted manifest can only make the verdict stricter here, never grant a use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bioart_pipeline.licensing.rules import ALLOWED, REFUSED, SIGNOFF, Verdict, normalize_license
from bioart_pipeline.licensing.studio import Studio, same_party
from bioart_pipeline.portfolio.embedded import LIST_SEPARATOR

# How reasons begin, so that a summary can count them (release/training_summary.py).
RESERVATION = "training reserved in the file"
CONTRADICTION = "embedded metadata contradicts the sidecar"
MODEL_MADE_REASON = "the file declares a model made it"

# Carriers, as the raw table names them and as a reason names them.
CREATORS = {"exif_artist": "EXIF Artist", "iptc_byline": "IPTC By-line",
            "png_author": "PNG Author", "xmp_creator": "XMP dc:creator",
            "xmp_rights_owner": "XMP rights owner"}
NOTICES = {"exif_copyright": "EXIF Copyright", "iptc_copyright": "IPTC Copyright Notice",
           "png_copyright": "PNG Copyright", "xmp_rights": "XMP dc:rights"}
USAGE_TERMS = {"xmp_usage_terms": "XMP xmpRights:UsageTerms",
               "xmp_other_constraints": "XMP plus:OtherConstraints",
               "iptc_special_instructions": "IPTC Special Instructions",
               "png_disclaimer": "PNG Disclaimer"}
_SHOWN = {**CREATORS, **NOTICES, **USAGE_TERMS, "iptc_credit": "IPTC Credit",
          "iptc_source": "IPTC Source", "png_source": "PNG Source", "png_comment": "PNG Comment",
          "png_generator": "PNG generator chunk", "xmp_web_statement": "XMP WebStatement",
          "xmp_data_mining": "XMP plus:DataMining",
          "xmp_tdm_reservation": "XMP tdm:reservation", "xmp_tdm_policy": "XMP tdm:policy",
          "xmp_digital_source_type": "XMP digital source type",
          "xmp_unreadable": "XMP unreadable"}

MODEL_MADE = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
              "algorithmicMedia")
# training-mining entries a LoRA's training falls under (cawg.* and the older c2pa.* names)
_TRAINING_USES = ("ai_training", "ai_generative_training", "data_mining")

# What the public summary's 3.1 states as checked (release/training_summary.py): exactly the
# carriers _reservations reads.
OPT_OUT_PROTOCOLS = (
    "W3C TDMRep `tdm:reservation` = 1 in XMP (with its `tdm:policy`), the machine-readable "
    "opt-out of EU DSM Directive Art. 4(3)",
    "C2PA and CAWG training-mining assertions (`cawg.training-mining`, `c2pa.training-mining`):"
    " `notAllowed` for " + ", ".join(_TRAINING_USES) + " refuses; `constrained` needs a "
    "person's sign-off",
    "IPTC PLUS `plus:DataMining` in XMP: the DMI-PROHIBITED values",
    "a reservation of AI training or text-and-data mining written in "
    + ", ".join({**NOTICES, **USAGE_TERMS}.values()),
)

# "training" alone is no AI topic: medical illustrations are made for nurse training.
_AI_TOPIC = re.compile(
    r"\b(?:a\.?i|artificial intelligence|machine[- ]learning|neural networks?|llms?|"
    r"(?:text[- ]and[- ])?data[- ]?mining|tdm|(?:model|algorithm|ai|ml) training|"
    r"train(?:ing)? (?:an? )?(?:ai|models?|algorithms?|neural))\b", re.I)
_FORBIDS = re.compile(
    r"\b(?:no|not|never|prohibit\w*|forbid\w*|reserv\w*|opt(?:s|ed)?[- ]?out|exclud\w*|"
    r"disallow\w*|refus\w*|may not|must not|shall not|cannot|can't|do not|don't)\b|"
    r"\bwithout (?:(?:the |prior |express |explicit |written )*)(?:permission|consent|licen[cs]e)",
    re.I)
_NO_AI_TAG = re.compile(r"\bno[- ]?(?:image)?ai\b", re.I)  # DeviantArt's noai / noimageai
_CONDITIONS = re.compile(r"\b(?:only|unless|subject to|provided that|upon request|contact|"
                         r"permission|consent|fee|licen[cs]e (?:required|needed))\b", re.I)
# Texts that are licences or notices, judged by the licence and authorship rules instead.
_KNOWN_TERMS = re.compile(
    r"©|\(c\)|\bcopyright\b|\brights reserved\b|\bpublic domain\b|\bcc[\s_-]*(?:by|0)\b|"
    r"creative\s*commons|creativecommons\.org|\blicen[cs]ed under\b|\bspdx\b", re.I)


def _values(prov: Mapping[str, str], column: str) -> list[str]:
    return [v for v in str(prov.get(column) or "").split(LIST_SEPARATOR) if v.strip()]


def model_made(prov: Mapping[str, str]) -> str:
    """Where the file declares that a model made it ("C2PA trainedAlgorithmicMedia"), or ""."""
    found = [f"C2PA {term}" for term in _source_terms(prov, "c2pa_digital_source_types")]
    found += [f"XMP {term}" for term in _source_terms(prov, "xmp_digital_source_type")]
    found += [f"PNG chunk {chunk}" for chunk in _values(prov, "png_generator")]
    return LIST_SEPARATOR.join(found)


def _source_terms(prov: Mapping[str, str], column: str) -> list[str]:
    """IPTC digital source types (URIs or bare terms) that say a model made the image."""
    terms = [v.rstrip("/").rsplit("/", 1)[-1] for v in _values(prov, column)]
    return sorted({t for t in terms if t in MODEL_MADE})


def findings(prov: Mapping[str, str], sidecar_license: str, studio: Studio,
             intended_use: str) -> list[Verdict]:
    """A verdict for every rule above that the raw-portfolio row `prov` (sidecar and embedded
    columns) triggers, given the sidecar's SPDX licence; notes come as "allowed" verdicts."""
    author = str(prov.get("author") or "")
    contradictions = _authorship(prov, author, studio) + _notices(prov, sidecar_license, author)
    if prov.get("xmp_unreadable"):
        contradictions.insert(0, f"its XMP cannot be read ({prov['xmp_unreadable']})")
    conflict = REFUSED if intended_use == "commercial" else SIGNOFF
    found = _reservations(prov) + _c2pa(prov)
    found += [Verdict(conflict, f"{CONTRADICTION}: {text}")
              for text in contradictions]
    found += _usage_terms(prov)
    made = model_made(prov)
    if made:
        found.append(Verdict(SIGNOFF, f"{MODEL_MADE_REASON} ({made}): not hand-made work "
                                      "without a sign-off that says so"))
    return found


def _reservations(prov: Mapping[str, str]) -> list[Verdict]:
    found = []
    if "1" in [v.strip() for v in _values(prov, "xmp_tdm_reservation")]:
        policy = prov.get("xmp_tdm_policy") or ""
        found.append("XMP TDMRep tdm:reservation = 1" + (f" (policy {policy})" if policy else "")
                     + ": the rightsholder opts out of text-and-data mining")
    # PLUS writes the value as a URI (http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-...)
    found += [f"XMP plus:DataMining {value}" for value in _values(prov, "xmp_data_mining")
              if "DMI-PROHIBITED" in value.upper()]
    for column, carrier in {**NOTICES, **USAGE_TERMS}.items():
        found += [f"{carrier} {text!r} reserves AI training or text-and-data mining"
                  for text in _values(prov, column) if reserves_ai_training(text)]
    found += _c2pa_reservations(prov)
    return [Verdict(REFUSED, f"{RESERVATION}: {text}") for text in found]


def _c2pa_reservations(prov: Mapping[str, str]) -> list[str]:
    signer = prov.get("c2pa_signer") or "an unnamed signer"
    return [f"C2PA training-mining {entry} (signed by {signer}, {prov.get('c2pa_state')})"
            for entry in _training_entries(prov) if entry.partition("=")[2].startswith(
                "notAllowed")]


def _training_entries(prov: Mapping[str, str]) -> list[str]:
    """The training-mining entries that a LoRA's training falls under."""
    return [e for e in _values(prov, "c2pa_training_mining")
            if e.partition("=")[0].split(".", 1)[-1] in _TRAINING_USES]


def reserves_ai_training(text: str) -> bool:
    """Whether a usage term or notice reserves AI training or text-and-data mining."""
    return bool(_NO_AI_TAG.search(text) or (_AI_TOPIC.search(text) and _FORBIDS.search(text)))


def _c2pa(prov: Mapping[str, str]) -> list[Verdict]:
    """Constrained training-mining entries and the manifest's own state; a signer on no
    trust list is a note in the reason."""
    state = str(prov.get("c2pa_state") or "")
    if not state:
        return []
    found = [Verdict(SIGNOFF, f"C2PA training-mining {entry}: a person must check the "
                              "constraint") for entry in _training_entries(prov)
             if entry.partition("=")[2].startswith("constrained")]
    failures = prov.get("c2pa_failures") or ""
    if state.startswith("unreadable") or state == "Invalid":
        found.append(Verdict(SIGNOFF, f"C2PA manifest {state}"
                                      + (f" ({failures})" if failures else "")
                                      + ": the file changed after it was signed, or the "
                                        "manifest is damaged or forged"))
    elif state != "Trusted":
        signer = prov.get("c2pa_signer") or "an unnamed signer"
        found.append(Verdict(ALLOWED, f"C2PA manifest {state.lower()}, but its signer {signer} "
                                      "is on no trust list here"))
    return found


def _authorship(prov: Mapping[str, str], author: str, studio: Studio) -> list[str]:
    """A creator or rights owner named in the file who is not the sidecar's author (two of
    the studio's own authors are one party: staff sign the studio's work)."""
    found = []
    for column, carrier in CREATORS.items():
        for name in _values(prov, column):
            if not _one_party(name, author, studio):
                found.append(f"{carrier} names {name!r}, the sidecar's author is "
                             f"{author or '(none)'!r}")
    return found


def _one_party(a: str, b: str, studio: Studio) -> bool:
    return same_party(a, b) or (studio.is_studio_author(a) and studio.is_studio_author(b))


def _notices(prov: Mapping[str, str], sidecar_license: str, author: str) -> list[str]:
    found = []
    for column, carrier in {**NOTICES, **USAGE_TERMS}.items():
        for text in _values(prov, column):
            problem = _notice_conflict(text, sidecar_license, author)
            if problem:
                found.append(f"{carrier} {text!r} {problem}")
    return found


def _notice_conflict(text: str, sidecar_license: str, author: str) -> str:
    holder = _copyright_holder(text)
    if holder and not same_party(holder, author):
        return f"names {holder!r}, the sidecar's author is {author or '(none)'!r}"
    if "ALL RIGHTS RESERVED" in text.upper() and not sidecar_license.startswith("LicenseRef-"):
        return f"reserves all rights, the sidecar says {sidecar_license or 'nothing'}"
    embedded = _license_in_text(text.upper())
    if embedded and embedded != sidecar_license:
        return f"names {embedded}, the sidecar says {sidecar_license or 'nothing'}"
    return ""


_COPYRIGHT = re.compile(r"©|\(c\)|\bcopyright\b", re.I)
_BOILERPLATE = re.compile(
    r"\b(?:all|some) rights reserved\b.*|\b(?:19|20)\d\d(?:\s*-\s*\d{2,4})?\b"
    r"|\b(?:licen[cs]ed|released|published)\b.*|\bcc[\s_-]*(?:by|0)\b.*", re.I)


def _copyright_holder(text: str) -> str:
    """The party a copyright notice names ("© 2024 Other Agency Ltd. All rights reserved." ->
    "Other Agency Ltd"); "" for text that is no copyright notice or names nobody."""
    if not _COPYRIGHT.search(text):
        return ""
    rest = _BOILERPLATE.sub(" ", _COPYRIGHT.sub(" ", text))
    rest = " ".join(re.sub(r"[^\w&'-]+", " ", rest).split())
    rest = re.sub(r"^(?:by|the)\s+", "", rest, flags=re.I)
    return rest if re.search(r"[^\W\d_]{2,}", rest) else ""


def _license_in_text(upper: str) -> str:
    match = re.search(r"CC[\s_-]*BY(?:[\s_-]*(?:NC|ND|SA))*(?:[\s_-]*\d\.\d)?|CC0(?:[\s_-]*1\.0)?",
                      upper)
    return normalize_license(match.group(0)) if match else ""


def _usage_terms(prov: Mapping[str, str]) -> list[Verdict]:
    """Usage terms that are neither a reservation nor a licence or notice: a person reads
    them ("Editorial use only", "AI training only under licence")."""
    found = []
    for column, carrier in USAGE_TERMS.items():
        for text in _values(prov, column):
            if reserves_ai_training(text):
                continue
            conditional_ai = _AI_TOPIC.search(text) and _CONDITIONS.search(text)
            if conditional_ai or not (_KNOWN_TERMS.search(text) or _AI_TOPIC.search(text)):
                found.append(Verdict(SIGNOFF, f"{carrier} {text!r} is a usage term this "
                                                    "pipeline cannot classify: a person must "
                                                    "check it allows training"))
    return found


def describe(prov: Mapping[str, str]) -> str:
    """Everything the file carries, one line: what the manifest and `bioart audit` show."""
    parts = [f"{label}: {prov[column]}" for column, label in _SHOWN.items() if prov.get(column)]
    state = prov.get("c2pa_state")
    if state:
        details = [f"signer {prov['c2pa_signer']}" if prov.get("c2pa_signer") else "",
                   f"failures {prov['c2pa_failures']}" if prov.get("c2pa_failures") else "",
                   f"training-mining {prov['c2pa_training_mining']}"
                   if prov.get("c2pa_training_mining") else "",
                   f"sources {prov['c2pa_digital_source_types']}"
                   if prov.get("c2pa_digital_source_types") else ""]
        parts.append(f"C2PA: {state}" + "".join(f", {d}" for d in details if d))
    return " | ".join(parts)
