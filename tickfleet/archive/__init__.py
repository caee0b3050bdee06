"""The tick archive: every published tick kept as Parquet, read back for export and replay."""
