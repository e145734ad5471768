"""Helpers that turn core results into Dagster metadata."""


from pathlib import Path

import dagster as dg
import pandas as pd

from bioart_pipeline.common.files import sha256_file
from bioart_pipeline.common.paths import Workspace


def table_preview(frame: pd.DataFrame, columns: list[str], limit: int = 40
                  ) -> dg.MetadataValue:
    """The first `limit` rows as a real Dagster table; the stage's Parquet table has them all."""
    return table_value(frame[columns].head(limit))


def table_value(frame: pd.DataFrame, decimals: int = 3) -> dg.MetadataValue:
    """A real Dagster table (sortable in the UI, typed columns), floats rounded."""
    types = {column: _column_type(frame[column]) for column in frame.columns}
    records = [dg.TableRecord({c: _plain(v, types[c], decimals) for c, v in row.items()})
               for row in frame.to_dict("records")]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in types.items()])
    return dg.MetadataValue.table(records, schema=schema)


def _column_type(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    return "float" if pd.api.types.is_float_dtype(column) else "string"


def _plain(value: object, kind: str, decimals: int) -> str | int | float | bool | None:
    if value is None or (kind == "float" and pd.isna(value)):
        return None
    return {"bool": bool, "int": int, "float": lambda v: round(float(v), decimals),
            "string": str}[kind](value)


def counts_md(series: pd.Series) -> dg.MetadataValue:
    return dg.MetadataValue.json({str(k): int(v) for k, v in series.value_counts().items()})


def path_value(workspace: Workspace, path: Path) -> dg.MetadataValue:
    """A path as the UI shows it: relative to the data folder, no home folders on screen."""
    return dg.MetadataValue.path(workspace.display_path(path))


def stage_result(workspace: Workspace, table_path: Path, table_version: str, metadata: dict,
                 upstream: dict[str, Path] | None = None) -> dg.MaterializeResult:
    """Every stage reports its Parquet table and uses the table's hash as its data version,
    and names the data versions of the upstream tables it read: lineage follows content."""
    versions = {name: data_version(path) for name, path in (upstream or {}).items()}
    return dg.MaterializeResult(
        metadata={"table": path_value(workspace, table_path),
                  "table_sha256": table_version,
                  **({"upstream_data_versions": dg.MetadataValue.json(versions)}
                     if versions else {}),
                  **metadata},
        data_version=dg.DataVersion(table_version[:16]),
    )


def data_version(table_path: Path) -> str:
    return sha256_file(table_path)[:16]
