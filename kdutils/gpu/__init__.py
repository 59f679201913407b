"""The one-command GPU run of the whole book (`python -m kdutils gpu`, `scripts/gpu.sh`): correctness checks,
benchmarks, every chapter at the `gpu` profile inside a time budget, and its results packed to travel back.

`workload` (what a chapter trains, and how many seeds fit a budget) is imported by the chapters; the rest only
by the command, so importing this package costs nothing.
"""
