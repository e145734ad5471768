"""TRAINING_DATA_SUMMARY.md: the public summary of a LoRA's training content, field by field
as the European Commission's template asks (AI Act Art. 53(1)(d); Explanatory Notice and
Template, C(2025) 8311).

Counts and licences only, never a listing of the files: the summary is public, the manifest
is not. Every training image falls in exactly one of the template's source sections:
- 2.5 synthetic: the file declares a model made it (trains only signed off);
- 2.6 other sources: the studio's own works (its licence and its author), made in-house;
- 2.2.1 commercially licensed: a third-party licence the studio recorded as allowing training
  (studio.yaml permitted_licenses, e.g. a stock agency's agreement);
- 2.1 publicly available: any other third-party work whose source is a public web address
  (CC0 and CC-BY works from public pages);
- 2.2.2 private from other third parties: the rest (third-party works obtained privately).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bioart_pipeline.licensing.embedded import CONTRADICTION, OPT_OUT_PROTOCOLS, RESERVATION
from bioart_pipeline.licensing.studio import Studio

SUMMARY = "TRAINING_DATA_SUMMARY.md"
SYNTHETIC = "2.5 synthetic data"
OWN_WORK = "2.6 other sources: the studio's own works"
LICENSED = "2.2.1 commercially licensed by rightsholders"
PUBLIC = "2.1 publicly available"
PRIVATE = "2.2.2 private, from other third parties"
DUPLICATE = "a copy or near-copy of another portfolio image (one of each trains)"
# The template's size bands for images (section 1.3).
_IMAGE_BANDS = ((1_000_000, "Less than 1 million images"),
                (1_000_000_000, "1 million to 1 billion images"))


@dataclass(frozen=True)
class SummaryHeader:
    model: str  # the released file's stem
    spec_type: str
    base_model: str
    base_model_summary: str  # where the base model's own training content is documented


def source_category(row: pd.Series, studio: Studio) -> str:
    """The template section an image's source belongs to (module docstring)."""
    if row.get("model_made"):
        return SYNTHETIC
    if row["license"] in studio.own_licenses and studio.is_studio_author(row["author"]):
        return OWN_WORK
    if row["license"] in studio.permitted_licenses:
        return LICENSED
    if str(row.get("source", "")).lower().startswith(("https://", "http://")):
        return PUBLIC
    return PRIVATE


def training_summary(header: SummaryHeader, manifest: pd.DataFrame, studio: Studio,
                     release_id: str, placed_on: str) -> str:
    """`release_id` and `placed_on` (ISO date the release is published) are the release's."""
    trained = manifest[manifest["included"]]
    categories = (trained.apply(source_category, axis=1, studio=studio) if len(trained)
                  else pd.Series(dtype=str))
    lines = [
        f"# Public summary of training content: {header.model}", "",
        "Field by field as the European Commission's template for the public summary of "
        "training content asks (AI Act, Article 53(1)(d)). Counts and licences are exact; no "
        "file is listed.", "",
        "## 1. General information", "",
        *_general(header, studio, trained, release_id, placed_on), "",
        "## 2. List of data sources", "",
        "| section | licence | works |", "|---|---|---|",
        *_source_rows(trained, categories), "",
        *_sources(trained, categories), "",
        "## 3. Data processing aspects", "",
        *_opt_outs(manifest[~manifest["included"]], studio), "",
        "### 3.2 Removal of illegal content", "",
        "The training set is the studio's curated portfolio of its own and licensed "
        "illustrations, each added by a person; no automated filtering beyond the licence "
        "rules in 3.1.", "",
        "### 3.3 Other information: what did not train, and why", "",
        *_left_out_lines(manifest[~manifest["included"]]),
    ]
    return "\n".join(lines) + "\n"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def size_band(images: int) -> str:
    return next((band for limit, band in _IMAGE_BANDS if images < limit),
                "More than 1 billion images")


def _field(name: str, value: str) -> str:
    return f"- **{name}**: {value}"


def _general(header: SummaryHeader, studio: Studio, trained: pd.DataFrame, release_id: str,
             placed_on: str) -> list[str]:
    collected = sorted(d for d in trained.get("retrieved", pd.Series(dtype=str)) if d)
    return [
        "### 1.1 Provider identification", "",
        _field("Provider name and contact details",
               f"{studio.name or '(no studio name in studio.yaml)'}, "
               f"{studio.contact or '(no contact in studio.yaml)'}"),
        _field("Authorised representative name and contact details",
               studio.authorised_representative or "none named"), "",
        "### 1.2 Model identification", "",
        _field("Versioned model name", f"{header.model}, release {release_id}: a "
                                       f"{header.spec_type} LoRA adapter"),
        _field("Model dependencies", f"an adapter of the base model {header.base_model}; its "
                                     f"own training content: {header.base_model_summary}. "
                                     "This summary covers the adapter's training only"),
        _field("Date of placement on the market", placed_on), "",
        "### 1.3 Modalities, overall training data size and other characteristics", "",
        _field("Modality", "image (with one text caption per image)"),
        _field("Training data size", f"{size_band(len(trained))} "
                                     f"({plural(len(trained), 'image')})"),
        _field("Types of content", "illustrations from the studio's portfolio; captions: "
               + _counts(trained["caption_origin"].map(_caption_origin))),
        _field("Latest date of data collection",
               (collected[-1] if collected else "not recorded in the sidecars")
               + "; the portfolio is read again at each retraining, this summary covers this "
                 "version"),
        _field("Linguistic characteristics", "captions in English"),
    ]


def _sources(trained: pd.DataFrame, categories: pd.Series) -> list[str]:
    def count(category: str) -> int:
        return int((categories == category).sum())

    def licences(category: str) -> str:
        found = trained[categories == category]["license"].value_counts()
        return ", ".join(f"{licence} ({n})" for licence, n in found.items())

    def answer(category: str, what: str) -> str:
        n = count(category)
        return f"yes: {plural(n, 'work')} {what}, under {licences(category)}" if n else "no"

    third_party = len(trained) - count(OWN_WORK) - count(SYNTHETIC)
    return [
        _field("Third-party works", f"{third_party}, each credited with author, source and "
                                    "licence in ATTRIBUTION.md"),
        _field("2.1 Publicly available datasets",
               answer(PUBLIC, "from public web pages, each added to the portfolio by a person "
                              "(no dataset collection)")),
        _field("2.2.1 Private datasets commercially licensed by rightsholders",
               answer(LICENSED, "under licence terms the studio recorded as allowing "
                                "training")),
        _field("2.2.2 Private datasets obtained from other third parties",
               answer(PRIVATE, "obtained from third parties outside a public source")),
        _field("2.3 Data crawled or scraped from online sources",
               "no: only files a person placed in the studio's portfolio are read; nothing is "
               "fetched"),
        _field("2.4 User data", "no"),
        _field("2.5 Synthetic data",
               answer(SYNTHETIC, "each declaring in its metadata that a model made it (C2PA "
                                 "or IPTC digital source type, or a generator's PNG chunk) "
                                 "and signed off by a person")),
        _field("2.6 Other sources of data", answer(OWN_WORK, "made by the studio itself")),
    ]


def _opt_outs(left_out: pd.DataFrame, studio: Studio) -> list[str]:
    signatory = {True: "yes", False: "no", None: "not stated in studio.yaml"}
    return [
        "### 3.1 Respect of reservations of rights from the text and data mining exception", "",
        _field("Signatory to the General-Purpose AI Code of Practice",
               signatory[studio.code_of_practice_signatory]),
        _field("Opt-out protocols checked in every file before it may train",
               "each refuses the image whatever its sidecar says:"),
        *(f"  - {protocol}" for protocol in OPT_OUT_PROTOCOLS),
        _field("Not checked", "reservations published only at the source's web site "
                              "(robots.txt, ai.txt, TDMRep HTTP headers or "
                              "/.well-known/tdmrep.json): nothing is fetched. The person who "
                              "adds a third-party file records its licence in a sidecar, "
                              "which is checked against this LoRA's intended use"),
        _field("Refused for a reservation of rights embedded in the file",
               plural(_reason_count(left_out, RESERVATION), "image")),
        _field("Refused or held for embedded rights contradicting the sidecar",
               plural(_reason_count(left_out, CONTRADICTION), "image")),
    ]


def _caption_origin(origin: str) -> str:
    return "written by the artist" if origin == "artist" else f"generated ({origin})"


def _counts(series: pd.Series) -> str:
    return ", ".join(f"{n} {value}" for value, n in series.value_counts().items()) or "none"


def _source_rows(trained: pd.DataFrame, categories: pd.Series) -> list[str]:
    if trained.empty:
        return ["| - | - | 0 |"]
    groups = trained.assign(category=categories).groupby(["category", "license"]).size()
    return [f"| {category} | {licence} | {n} |" for (category, licence), n in groups.items()]


def _reason_count(left_out: pd.DataFrame, reason: str) -> int:
    return int(left_out["verdict_reason"].str.contains(reason, regex=False).sum())


def _left_out_lines(left_out: pd.DataFrame) -> list[str]:
    if left_out.empty:
        return ["Every image of the portfolio trained."]
    reasons = left_out["exclusion"].where(left_out["exclusion"] != "",
                                          left_out["verdict_reason"])
    # a duplicate's reason names the copy that trained: a path, which stays private
    reasons = reasons.where(left_out["duplicate_of"] == "", DUPLICATE)
    return [f"- {plural(n, 'image')}: {reason}" for reason, n in reasons.value_counts().items()]
