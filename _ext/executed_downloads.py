"""Sphinx extension: the ".ipynb" a reader downloads from a page is the notebook as executed for that page.

The theme's download button serves the page's source from `_sources/`, i.e. the committed notebook, whose stored
outputs (if any) come from the test suite's smoke profile. A reader who downloads it would see numbers that
contradict the page. At the end of the HTML build, each `_sources/**/*.ipynb` is replaced by the notebook merged
with the outputs MyST-NB's jupyter-cache holds for it (what the page rendered; `_build/jupyter_execute/` is not
used: for a notebook taken from the cache it holds the unexecuted source), so the download shows exactly the
page's outputs, at the book's profile, read from the same records.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def cache_path(app: Sphinx) -> Path | None:
    """The jupyter-cache MyST-NB executes into (`nb_execution_cache_path`, set by MyST-NB at start-up)."""
    cfg = getattr(app.env, "mystnb_config", None)
    path = getattr(cfg, "execution_cache_path", "") if cfg is not None else ""
    return Path(path) if path else None


def replace_sources(sources: Path, executed: Callable[[Path], Any]) -> list[str]:
    """Replace each `_sources/**/*.ipynb` with `executed(path)` (a notebook node, or None to keep it); returns
    the pages replaced (relative paths)."""
    import nbformat

    done = []
    for src in sorted(sources.rglob("*.ipynb")):
        nb = executed(src)
        if nb is not None:
            src.write_text(nbformat.writes(nb), encoding="utf-8")
            done.append(str(src.relative_to(sources)))
    return done


def from_cache(cache_dir: Path) -> Callable[[Path], Any]:
    """A function: notebook path -> the notebook with the outputs the cache holds for it (what the page
    shows), or None when the cache has no execution of it."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir)

    def executed(path: Path):
        nb = nbformat.read(path, as_version=4)
        try:
            _, merged = cache.merge_match_into_notebook(nb)
        except KeyError:
            return None
        return merged

    return executed


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    sources, cache_dir = Path(app.outdir) / "_sources", cache_path(app)
    if not (sources.is_dir() and cache_dir is not None and cache_dir.is_dir()):
        return
    done = replace_sources(sources, from_cache(cache_dir))
    logger.info(f"executed_downloads: {len(done)} notebook downloads are the executed pages")


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
