"""The license manifest: one row per usable image with provenance, caption and verdict."""

from __future__ import annotations

import pandas as pd

from bioart_pipeline.licensing.rules import (
    REFUSED,
    embedded_conflict,
    judge,
    license_url,
    normalize_license,
)

MANIFEST_COLUMNS = [
    "source_sha256", "preprocessed_sha256", "key", "path", "role", "license", "license_raw",
    "license_url", "author", "source", "retrieved", "attribution", "caption", "caption_origin",
    "verdict", "verdict_reason", "included",
]


def build_manifest(raw: pd.DataFrame, preprocessed: pd.DataFrame, captions: pd.DataFrame,
                   intended_use: str, license_policy: str) -> pd.DataFrame:
    """Join the three upstream tables on the source hash and judge each image.

    With license_policy "exclude" a refused image stays in the manifest with included=False;
    with "fail" it stays included, so the blocking check stops training."""
    provenance = raw.drop_duplicates("sha256").set_index("sha256")
    usable = preprocessed[preprocessed["status"] == "ok"].set_index("source_sha256")
    rows = []
    for record in captions.to_dict("records"):
        sha = record["source_sha256"]
        rows.append(_row(record, provenance.loc[sha], usable.loc[sha], intended_use,
                         license_policy))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def _row(caption: dict, prov: pd.Series, prep: pd.Series, intended_use: str,
         license_policy: str) -> dict:
    spdx = normalize_license(prov["license"])
    link = prov["license_url"] or license_url(spdx)
    conflict = embedded_conflict(spdx, [prov["exif_copyright"], prov["xmp_rights"],
                                        prov["xmp_usage_terms"]])
    verdict = judge(spdx, intended_use, author=prov["author"], source=prov["source"], link=link,
                    embedded_conflict=conflict, data_mining=prov["xmp_data_mining"])
    return {
        "source_sha256": caption["source_sha256"],
        "preprocessed_sha256": prep["preprocessed_sha256"],
        "key": prep["key"], "path": caption["path"], "role": prep["role"],
        "license": spdx, "license_raw": prov["license"], "license_url": link,
        "author": prov["author"], "source": prov["source"], "retrieved": prov["retrieved"],
        "attribution": prov["attribution"], "caption": caption["caption"],
        "caption_origin": caption["origin"], "verdict": verdict.status,
        "verdict_reason": verdict.reason,
        "included": not (verdict.status == REFUSED and license_policy == "exclude"),
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
