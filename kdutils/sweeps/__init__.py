"""Sweeps: papermill grids run locally and resumably (`sweep`), on a Ray cluster (`ray_executor`), and the
per-arm learning-rate selection on a validation split (`tuning`); for the chapters' multi-process run commands,
the `--shard K/N` option, counted from 1 (`shards`), and the core-hour estimate and per-process deal of their dry
runs (`cost`).
"""
