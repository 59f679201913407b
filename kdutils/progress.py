"""Progress bars: tqdm.auto (a widget in Jupyter when ipywidgets is installed, text otherwise), quietly."""
from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # Without ipywidgets, tqdm.auto warns once and falls back to the text bar, which is what we want.
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
