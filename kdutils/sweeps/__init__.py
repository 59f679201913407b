"""Sweeps: papermill grids run locally and resumably (`sweep`), on a Ray cluster (`ray_executor`), and the
per-arm learning-rate selection on a validation split (`tuning`), and the `--shard K/N` parser of the chapters'
two-process run commands (`shards`).
"""
