#!/usr/bin/env bash
# Set up everything on a fresh clone and build the HTML book (executing its notebooks at the default scale).
#   bash scripts/book.sh            -> .venv/ (created once), then _build/html/index.html
# Notebooks render recorded runs from results/; a missing run is shown as "not yet run", never trained here.
# Maths renders offline: requirements.txt installs MathJax (django-static-mathjax) and _ext/local_mathjax.py
# copies it into _build/html/_static/mathjax/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --disable-pip-version-check -q -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
# -W: warnings are errors; --all with --keep-going: every page is re-read, so a failing notebook fails the build.
KDUTILS_LOAD_ONLY=1 .venv/bin/jupyter-book build . -W -n --keep-going --all  # load-only: never trains a missing run
echo "Book built: $(pwd)/_build/html/index.html"
