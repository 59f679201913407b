#!/usr/bin/env bash
# Throughput benchmarks (kdutils.bench.run): reference loop vs fast path, K students together vs in sequence.
#   bash scripts/bench.sh                  -> all tasks on the default device (CUDA when available), recorded
#   bash scripts/bench.sh --task mlp --profile
# Extra arguments go to `python -m kdutils bench` (see --help). Figures are written to results/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m kdutils bench --record "$@"
