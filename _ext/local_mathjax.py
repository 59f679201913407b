"""Sphinx extension: serve MathJax 3 from the built book itself, so maths renders without a network.

MathJax comes from the PyPI package `django-static-mathjax` (a plain copy of MathJax's es5 distribution;
Django is not needed), installed with the rest of requirements.txt by scripts/book.sh. At the end of an HTML
build its `es5/` folder is copied to `_build/html/_static/mathjax/`, where `mathjax_path` in _config.yml
points ("mathjax/tex-chtml.js", relative to _static/). Without
the package the build warns (an error under -W) rather than silently falling back to a CDN.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
TARGET = "mathjax"  # folder under _static
ENTRY = "tex-chtml.js"


def mathjax_source() -> Path | None:
    """The es5 folder of the installed MathJax package, or None when it is not installed."""
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError:
        return None
    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return src if (src / ENTRY).is_file() else None


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src = mathjax_source()
    if src is None:
        logger.warning("local MathJax not found: install django-static-mathjax (requirements.txt); "
                       "maths will not render in this build")
        return
    dest = Path(app.outdir) / "_static" / TARGET
    if (dest / ENTRY).is_file() and (dest / ENTRY).stat().st_size == (src / ENTRY).stat().st_size:
        return  # already copied by an earlier build
    shutil.copytree(src, dest, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
