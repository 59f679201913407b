#!/usr/bin/env bash
# Re-execute the notebooks in place at the smoke profile, into a throw-away store, so that their committed
# outputs are what nbval compares against in the tests. Run after changing a notebook or what it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
export KDUTILS_PROFILE=smoke KDUTILS_RESULTS="$scratch/results" KDUTILS_CACHE="$scratch/cache" KDUTILS_PROGRESS=0
export KDUTILS_DEVICE=cpu
if [ -z "${KDUTILS_DATA:-}" ] && [ -d ../shared/data ]; then export KDUTILS_DATA="$(cd ../shared/data && pwd)"; fi
for nb in "${@:-notebooks/*.ipynb}"; do
  for f in $nb; do
    echo "executing $f"
    (cd "$(dirname "$f")" && ../.venv/bin/jupyter execute --inplace "$(basename "$f")" 2>&1 | { grep -v "without encryption" || true; })
  done
done
rm -rf "$scratch"
