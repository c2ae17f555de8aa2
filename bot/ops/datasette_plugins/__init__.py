"""Datasette plugins `liqbot browse` loads with `--plugins-dir` (each module is one plugin)."""
