"""The chapter contract and its registry: each `kdutils/chapters/<name>/__init__.py` exports one `CHAPTER`.

Why a registry: the scorecard, the CLI's `run <chapter>`, the sweeps' notebook metadata and the test of
`_toc.yml` all need the list of chapters. They find it here, by listing the packages under `kdutils.chapters`,
so adding a paper means adding one folder (plus its notebooks and its lines in `_toc.yml`), never editing a
list elsewhere. The core never imports a chapter by name.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

CHAPTERS_PACKAGE = "kdutils.chapters"


@dataclass(frozen=True)
class Chapter:
    """What the rest of the book needs to know about one paper's chapter."""

    name: str  # the folder's name; `python -m kdutils run <name>` and notebook metadata use it
    order: int  # its place in the book and in the scorecard (smaller first)
    paper: str  # short citation shown in the scorecard
    title: str  # the paper's title
    page: str  # the chapter's report page, relative to the book root, without suffix (the scorecard links it)
    pages: tuple[str, ...]  # every page of the chapter as `_toc.yml` lists it (without suffix)
    experiments: tuple[str, ...]  # the results/ folders that hold its records
    claims: tuple[str, ...]  # the claims it tests, listed as "not yet run" when no verdict can be computed
    recipe: Callable[..., Any]  # the recipe of a profile (the chapter's own arguments)
    run_all: Callable[..., list[dict[str, Any]]]  # every run of a profile: run_all(profile=..., ...) -> records
    verdicts: Callable[..., list[Any]]  # chapter_verdicts(profile, store=None) -> one Verdict per claim
    plan: Callable[..., Any] | None = None  # what runs at a profile, with the chosen learning rates
    point_configs: Callable[..., list[Any]] | None = None  # the runs of one point notebook (sweeps use it)
    gpu_work: Callable[..., Any] | None = None  # gpu_work(profile) -> kdutils.gpu.workload.ChapterWork (GPU script)

    def points(self, **params: Any) -> list[Any]:
        """The runs of one point notebook at `params` (what a sweep trains together and checks for records);
        ValueError for a chapter without point notebooks."""
        if self.point_configs is None:
            raise ValueError(f"chapter {self.name!r} has no point notebook configs (its CHAPTER.point_configs is None)")
        return self.point_configs(**params)


def names() -> list[str]:
    """The chapters' names, found as the packages under `kdutils.chapters` (nothing is imported but that)."""
    pkg = importlib.import_module(CHAPTERS_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg)


def load(name: str) -> Chapter:
    """The `CHAPTER` of chapter `name`; ValueError naming the chapters there are when there is no such one."""
    known = names()
    if name not in known:
        raise ValueError(f"unknown chapter {name!r}; choose one of: {', '.join(known)}")
    chapter = importlib.import_module(f"{CHAPTERS_PACKAGE}.{name}").CHAPTER
    if not isinstance(chapter, Chapter) or chapter.name != name:
        raise TypeError(f"{CHAPTERS_PACKAGE}.{name}.CHAPTER must be a Chapter named {name!r}")
    return chapter


def all_chapters() -> tuple[Chapter, ...]:
    """Every chapter, in the book's order."""
    return tuple(sorted((load(n) for n in names()), key=lambda c: (c.order, c.name)))


__all__ = ["CHAPTERS_PACKAGE", "Chapter", "all_chapters", "load", "names"]
