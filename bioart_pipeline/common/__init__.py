"""Small helpers every stage uses: hashing, atomic writes, Parquet tables, paths."""
