"""Reports: plots (optional `plot` extra, matplotlib)."""
