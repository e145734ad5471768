"""TRAINING_DATA_SUMMARY.md: the public summary of a LoRA's training content, in the sections
of the European Commission's template for Article 53(1)(d) of the AI Act (July 2025).

Counts and licences only, never a listing of the files: the summary is public, the manifest
is not."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bioart_pipeline.licensing.embedded import CONTRADICTION, RESERVATION
from bioart_pipeline.licensing.studio import Studio

SUMMARY = "TRAINING_DATA_SUMMARY.md"
OWN_WORK = "the studio's own works"
PUBLIC_DOMAIN = "public domain"
OPEN_LICENCE = "openly licensed works (Creative Commons)"
RECORDED_TERMS = "third-party works under terms the studio recorded as allowing training"
SIGNED_OFF = "third-party works cleared by a person's recorded sign-off"
PUBLIC_DOMAIN_IDS = ("CC0-1.0", "CC-PDM-1.0")
DUPLICATE = "a copy or near-copy of another portfolio image (one of each trains)"


@dataclass(frozen=True)
class SummaryHeader:
    provider: str
    model: str  # the released file's stem
    spec_type: str
    base_model: str
    approved_on: str  # ISO date of the review that approved it


def source_category(row: pd.Series, studio: Studio) -> str:
    """Where an image comes from, in the template's terms."""
    if row["signed_off_by"]:
        return SIGNED_OFF
    if row["license"] in studio.own_licenses and studio.is_studio_author(row["author"]):
        return OWN_WORK
    if row["license"] in PUBLIC_DOMAIN_IDS:
        return PUBLIC_DOMAIN
    if row["license"] in studio.permitted_licenses:
        return RECORDED_TERMS
    return OPEN_LICENCE


def training_summary(header: SummaryHeader, manifest: pd.DataFrame, studio: Studio) -> str:
    trained = manifest[manifest["included"]]
    left_out = manifest[~manifest["included"]]
    categories = trained.apply(source_category, axis=1, studio=studio) if len(trained) else \
        pd.Series(dtype=str)
    lines = [
        f"# Public summary of training content: {header.model}", "",
        "In the sections of the European Commission's template for the public summary of "
        "training content (AI Act, Article 53(1)(d)). Counts and licences are exact; no file is "
        "listed.", "",
        "## 1. General information", "",
        f"- **Provider**: {header.provider}.",
        f"- **Model**: {header.model}: a {header.spec_type} LoRA adapter, approved for release "
        f"on {header.approved_on} (the release id is in release.json beside this file).",
        f"- **Dependency**: the base model {header.base_model}, whose own training content "
        "its provider summarises; this summary covers the adapter's training only.",
        "- **Modality**: still images (illustrations) with one English text caption each.",
        f"- **Size**: {len(trained)} images (under 1 thousand); captions: "
        + _counts(trained["caption_origin"].map(_caption_origin)) + ".", "",
        "## 2. List of data sources", "",
        "| source category | licence | images |", "|---|---|---|",
        *_source_rows(trained, categories), "",
        "- **2.1 Publicly available datasets**: none.",
        f"- **2.2 Private datasets from third parties**: "
        f"{_count_of(categories, OPEN_LICENCE, RECORDED_TERMS, SIGNED_OFF)} third-party works, "
        "each under the licence above, with author and source in ATTRIBUTION.md.",
        "- **2.3 Data crawled or scraped online**: none. Only files a person placed in the "
        "studio's portfolio are read; nothing is fetched.",
        "- **2.4 User data**: none.",
        f"- **2.5 Synthetic data**: {_model_made(trained)}.",
        f"- **2.6 Other sources**: {_count_of(categories, OWN_WORK)} of {OWN_WORK}, "
        f"and {_count_of(categories, PUBLIC_DOMAIN)} public-domain works.", "",
        "## 3. Data processing aspects", "",
        "### 3.1 Reservations of rights (text and data mining opt-outs)", "",
        "Every image's licence is read from its sidecar and judged against this LoRA's "
        "intended use before it may train. Rights embedded in the file are read too (EXIF, "
        "IPTC-IIM, PNG text, XMP, C2PA): a reservation of text-and-data mining or AI training "
        "refuses the image whatever its sidecar says (a W3C TDMRep `tdm:reservation`, a C2PA "
        "training-mining `notAllowed`, an IPTC PLUS `DMI-PROHIBITED` value, a usage term or "
        "notice reserving AI training), and an embedded creator or copyright notice that "
        "contradicts the sidecar refuses it (or, for non-commercial use, holds it for a "
        "person's sign-off).", "",
        f"- Refused for a reservation of rights embedded in the file: "
        f"{_reason_count(left_out, RESERVATION)}.",
        f"- Refused or held for embedded rights contradicting the sidecar: "
        f"{_reason_count(left_out, CONTRADICTION)}.", "",
        "### 3.2 Removal of illegal content", "",
        "The training set is the studio's curated portfolio of its own and licensed "
        "illustrations; no automated filtering beyond the licence rules above.", "",
        "### 3.3 What did not train, and why", "",
        *_left_out_lines(left_out),
    ]
    return "\n".join(lines) + "\n"


def _caption_origin(origin: str) -> str:
    return "written by the artist" if origin == "artist" else f"generated ({origin})"


def _counts(series: pd.Series) -> str:
    return ", ".join(f"{n} {value}" for value, n in series.value_counts().items()) or "none"


def _count_of(categories: pd.Series, *wanted: str) -> int:
    return int(categories.isin(wanted).sum())


def _source_rows(trained: pd.DataFrame, categories: pd.Series) -> list[str]:
    if trained.empty:
        return ["| - | - | 0 |"]
    groups = trained.assign(category=categories).groupby(["category", "license"]).size()
    return [f"| {category} | {licence} | {n} |" for (category, licence), n in groups.items()]


def _reason_count(left_out: pd.DataFrame, reason: str) -> int:
    return int(left_out["verdict_reason"].str.contains(reason, regex=False).sum())


def _model_made(trained: pd.DataFrame) -> str:
    made = int((trained["model_made"] != "").sum()) if "model_made" in trained else 0
    if not made:
        return "none (no training image declares in its metadata that a model made it)"
    return (f"{made} images declare in their metadata that a model made them (C2PA or IPTC "
            "digital source type, or a generator's PNG chunk); each was signed off by a person")


def _left_out_lines(left_out: pd.DataFrame) -> list[str]:
    if left_out.empty:
        return ["Every image of the portfolio trained."]
    reasons = left_out["exclusion"].where(left_out["exclusion"] != "",
                                          left_out["verdict_reason"])
    # a duplicate's reason names the copy that trained: a path, which stays private
    reasons = reasons.where(left_out["duplicate_of"] == "", DUPLICATE)
    return [f"- {n} image(s): {reason}" for reason, n in reasons.value_counts().items()]
