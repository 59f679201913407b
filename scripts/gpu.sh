#!/usr/bin/env bash
# The whole book on one GPU in one command (python -m kdutils gpu): correctness checks, benchmarks, every
# chapter at the `gpu` profile with its seeds trimmed to the time budget, the results packed into $OUT.
#
# Needs only python3 with torch, numpy and tqdm, from a plain checkout (PYTHONPATH=.), and the datasets in
# ./data (torchvision's layout: data/MNIST/raw/*.gz, data/FashionMNIST/raw/*.gz), a git-ignored folder.
#
# On this workplace's lent GPU (the device tool), first copy the data into the checkout that the tool sends,
# here, once (the ../shared beside a checkout does not travel; 42 MB of the 64 MiB a call may carry):
#     mkdir -p data && cp -r /work/shared/data/MNIST /work/shared/data/FashionMNIST data/
# commit everything, and make ONE call of the tool's `run` verb, with the commit pasted in (the copy the tool
# sends has no .git, so without it every record would name commit "unknown"):
#     command:   KDUTILS_GIT_COMMIT=<output of git rev-parse HEAD> bash scripts/gpu.sh --out $OUT --budget-s 480
#     carry:     ["data"]
#     timeout_s: 560
# and unpack what comes back (files_at is in the reply), then commit the new records:
#     python -m kdutils gpu unpack <files_at>/kdutils-gpu-results.tar.gz*
#
# Other uses:  bash scripts/gpu.sh --dry-run            # the plan and estimates, nothing trained
#              bash scripts/gpu.sh --device cpu --profile smoke --chapters hinton --out /tmp/gpu-out
# All options: bash scripts/gpu.sh --help (book/rerun.md explains the stages and the budget).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ "$PYTHON" = python3 ] && PYTHON=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d data ] && [ -z "${KDUTILS_DATA:-}" ]; then export KDUTILS_DATA="$PWD/data"; fi
export KDUTILS_CACHE="${KDUTILS_CACHE:-$PWD/.cache/kdutils}"
exec "$PYTHON" -m kdutils gpu "$@"
