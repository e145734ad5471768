"""The license manifest: one row per usable image with provenance, caption, verdict, sign-off
and duplicate decision, and whether it trains."""

from __future__ import annotations

import pandas as pd

from bioart_pipeline.licensing.duplicates import (
    AWAITING_SIGNOFF,
    UNUSABLE,
    USABLE,
    Candidate,
    Duplicate,
    resolve_duplicates,
)
from bioart_pipeline.licensing.embedded import describe, findings, model_made
from bioart_pipeline.licensing.rules import (
    REFUSED,
    SIGNOFF,
    Verdict,
    judge,
    license_url,
    normalize_license,
)
from bioart_pipeline.licensing.signoff import SignOff, covering
from bioart_pipeline.licensing.studio import Studio

MANIFEST_COLUMNS = [
    "source_sha256", "preprocessed_sha256", "key", "path", "role", "license", "license_raw",
    "license_url", "author", "source", "retrieved", "attribution", "caption", "caption_origin",
    "embedded_rights", "model_made", "verdict", "verdict_reason", "signed_off_by",
    "signed_off_at", "signoff_note",
    "duplicate_group", "duplicate_of", "included", "exclusion",
]
AWAITING = ("awaits a licence sign-off: record one in the Dagster UI (materialize "
            "license_manifest with a launch config: signer, images, note) or with `bioart "
            "signoff`")


def build_manifest(raw: pd.DataFrame, preprocessed: pd.DataFrame, captions: pd.DataFrame,
                   intended_use: str, license_policy: str, studio: Studio,
                   signoffs: list[SignOff], near_duplicate_bits: int) -> pd.DataFrame:
    """Join the three upstream tables on the file's path, judge each image, apply the
    sign-offs, then keep one member of each group of duplicates (licensing/duplicates.py).

    `exclusion` says why an image does not train. With license_policy "exclude" a refused
    image is excluded; with "fail" it stays included, so the blocking check stops training.
    An image awaiting a sign-off is excluded until somebody signs it."""
    provenance = raw.set_index("path")
    usable = preprocessed[preprocessed["status"] == "ok"].set_index("path")
    rows, candidates = [], []
    for record in captions.to_dict("records"):
        prov, prep = provenance.loc[record["path"]], usable.loc[record["path"]]
        verdict = judge_image(prov, intended_use, studio)
        # a sign-off only counts for an image that needs one
        signoff = (covering(signoffs, record["path"], record["source_sha256"])
                   if verdict.status == SIGNOFF else None)
        row = _row(record, prov, prep, verdict, signoff)
        rows.append(row)
        candidates.append(Candidate(
            path=row["path"], role=row["role"], sha256=row["source_sha256"],
            phash=prep["phash"], usability=_usability(row), licence=row["verdict"],
            width=int(prov["width"]), height=int(prov["height"]), own_work=verdict.own_work,
            modified=prov["modified"]))
    duplicates = resolve_duplicates(candidates, near_duplicate_bits)
    for row in rows:
        _decide(row, duplicates.get(row["path"]), license_policy)
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def _usability(row: dict) -> int:
    if row["verdict"] == REFUSED:
        return UNUSABLE
    if row["verdict"] == SIGNOFF and not row["signed_off_by"]:
        return AWAITING_SIGNOFF
    return USABLE


def _decide(row: dict, duplicate: Duplicate | None, license_policy: str) -> None:
    row["duplicate_group"] = duplicate.group if duplicate else 0
    row["duplicate_of"] = duplicate.kept if duplicate and duplicate.reason else ""
    if duplicate and duplicate.reason:
        row["included"], row["exclusion"] = False, duplicate.reason
    elif row["verdict"] == REFUSED:
        row["included"] = license_policy != "exclude"
        row["exclusion"] = "" if row["included"] else f"licence: {row['verdict_reason']}"
    elif _usability(row) == AWAITING_SIGNOFF:
        row["included"], row["exclusion"] = False, AWAITING
    else:
        row["included"], row["exclusion"] = True, ""


def awaiting_signoff(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows a sign-off may cover: needs-signoff verdicts nobody has signed yet (a copy
    that another member of its duplicate group replaces would not train even if signed)."""
    return manifest[(manifest["verdict"] == SIGNOFF) & (manifest["signed_off_by"] == "")
                    & (manifest["duplicate_of"] == "")]


def judge_image(prov: pd.Series, intended_use: str, studio: Studio) -> Verdict:
    """One raw-portfolio row's verdict: its sidecar licence and author, checked against the
    studio file and against the rights embedded in the file (licensing/embedded.py)."""
    spdx = normalize_license(prov["license"])
    return judge(spdx, intended_use, studio, author=prov["author"], source=prov["source"],
                 link=prov["license_url"] or license_url(spdx),
                 embedded=findings(prov, spdx, studio, intended_use))


def _row(caption: dict, prov: pd.Series, prep: pd.Series, verdict: Verdict,
         signoff: SignOff | None) -> dict:
    spdx = normalize_license(prov["license"])
    link = prov["license_url"] or license_url(spdx)
    return {
        "source_sha256": caption["source_sha256"],
        "preprocessed_sha256": prep["preprocessed_sha256"],
        "key": prep["key"], "path": caption["path"], "role": prep["role"],
        "license": spdx, "license_raw": prov["license"], "license_url": link,
        "author": prov["author"], "source": prov["source"], "retrieved": prov["retrieved"],
        "attribution": prov["attribution"], "caption": caption["caption"],
        "caption_origin": caption["origin"], "embedded_rights": describe(prov),
        "model_made": model_made(prov), "verdict": verdict.status,
        "verdict_reason": verdict.reason,
        "signed_off_by": signoff.signer if signoff else "",
        "signed_off_at": signoff.signed_at if signoff else "",
        "signoff_note": signoff.note if signoff else "",
    }


def training_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[manifest["included"]].sort_values("path").reset_index(drop=True)


def attribution_markdown(manifest: pd.DataFrame, title: str) -> str:
    """ATTRIBUTION.md: credit for every included image whose license asks for it."""
    lines = [f"# Attribution: {title}", "",
             "This LoRA was trained on the following third-party works, credited as their "
             "licenses require.", ""]
    credited = training_rows(manifest)
    credited = credited[credited["license"].str.contains("CC-BY") | (credited["attribution"] != "")]
    if credited.empty:
        lines.append("No included work requires attribution.")
    for row in credited.to_dict("records"):
        text = row["attribution"] or f"{row['author']}, {row['source']}"
        lines.append(f"- {text}. Author: {row['author']}. Source: {row['source']}. "
                     f"License: [{row['license']}]({row['license_url']}).")
    return "\n".join(lines) + "\n"
