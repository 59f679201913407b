"""Packages imported where they are first used rather than where a module is imported.

Why: a chapter's package imports its claims and tables, which build pandas frames, but running the chapter
(`run_all`, what `python -m kdutils gpu` does on a machine that may have only torch, numpy and tqdm) never
builds one. `from kdutils.lazy import pandas as pd` keeps every `pd.X` as it was and imports pandas at the
first such use; a missing pandas then fails there, with ImportError, not at import time.
"""
from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for module `name` and imports it on the first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"


pandas = LazyModule("pandas")

__all__ = ["LazyModule", "pandas"]
