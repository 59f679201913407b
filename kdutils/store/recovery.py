"""Damaged cache files rebuilt on the way, reported where a reader will see them.

A rebuild is correct (the file is recomputed from its source), but it changes what a run cost and hides a
problem (a killed writer, a bad disk), so each one is warned about with its path and also noted in the
`recovered` field of every record being produced while it happened. Code that rebuilds a cache calls
`rebuilt(...)`; code that produces a record gathers the notes with `collecting(notes)`. Nested collections
(a student's run that trains its teacher) each get the note.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_COLLECTORS: ContextVar[tuple[list[str], ...]] = ContextVar("kdutils_recovery_collectors", default=())


def rebuilt(path: object, problem: object, action: str, notes: list[str] | None = None, stacklevel: int = 3) -> str:
    """Warn that the file at `path` is damaged (`problem`) and is being rebuilt (`action`); add the note to
    `notes` and to every list being collected. Returns the note."""
    text = str(problem)
    note = f"{text if str(path) in text else f'{path}: {text}'}; {action}"
    warnings.warn(note, RuntimeWarning, stacklevel=stacklevel)
    targets = [*_COLLECTORS.get(), *([notes] if notes is not None else [])]
    for target in {id(t): t for t in targets}.values():
        if note not in target:
            target.append(note)
    return note


@contextmanager
def collecting(notes: list[str]) -> Iterator[list[str]]:
    """Every `rebuilt` note made inside the block is appended to `notes` too."""
    token = _COLLECTORS.set((*_COLLECTORS.get(), notes))
    try:
        yield notes
    finally:
        _COLLECTORS.reset(token)
