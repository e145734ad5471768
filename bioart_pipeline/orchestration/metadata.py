"""Helpers that turn core results into Dagster metadata."""


from pathlib import Path

import dagster as dg
import pandas as pd


def table_md(frame: pd.DataFrame, columns: list[str], limit: int = 40) -> dg.MetadataValue:
    """A Markdown table preview (the UI renders it); long tables are cut with a note."""
    if frame.empty:
        return dg.MetadataValue.md("_(none)_")
    shown = frame[columns].head(limit).astype(str)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(v.replace("|", "/") for v in row) + " |"
              for row in shown.itertuples(index=False)]
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows in the Parquet table_")
    return dg.MetadataValue.md("\n".join(lines))


def counts_md(series: pd.Series) -> dg.MetadataValue:
    return dg.MetadataValue.json({str(k): int(v) for k, v in series.value_counts().items()})


def stage_result(table_path: Path, table_version: str, metadata: dict) -> dg.MaterializeResult:
    """Every stage reports its Parquet table and uses the table's hash as its data version,
    so lineage in the UI follows exact content."""
    return dg.MaterializeResult(
        metadata={"table": dg.MetadataValue.path(str(table_path)),
                  "table_sha256": table_version, **metadata},
        data_version=dg.DataVersion(table_version[:16]),
    )
