"""Per-arm learning-rate selection on a validation split held out from the training data, never the test set.

Why: one learning rate for every arm measures the recipe, not the method. Distilling at T=20 with the
tau^2-weighted KD term gives gradients several times larger than hard-label training, so a rate that suits
the student alone can make the distilled student diverge (the book's first Hinton runs did exactly that).
Each arm therefore gets its own rate from a small grid:

1. every candidate is a normal recorded run (`role = "select:<arm>"`) of the arm's config, trained on the
   training split minus `val_size` held-out examples (`DataConfig.val_size`), usually on one seed and for
   fewer epochs than the final runs (the budget says so);
2. the runner evaluates such runs on the held-out split too (`val_accuracy`, `val_nll`, ...);
3. `choose` ranks candidates by validation accuracy, ties broken by lower validation NLL, failed runs last;
   it is handed only the `val_*` metrics (`validation_view`), so the test set cannot influence the choice;
4. the chosen rate is then trained with every seed on the full training set (the chapter's final configs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

from kdutils.config import RunConfig
from kdutils.store.store import ResultStore

#: The only metrics selection may read.
VAL_METRICS = ("val_accuracy", "val_nll")
ROLE_PREFIX = "select:"


@dataclass(frozen=True)
class Selection:
    """The outcome of one arm's selection: the chosen rate/epochs and one row per candidate (for the chapter)."""

    arm: str
    lr: float
    epochs: int
    rows: tuple[dict[str, Any], ...]


def selection_configs(base: RunConfig, arm: str, lrs: Sequence[float], epochs: int | None = None,
                      val_size: int = 10_000, seed: int = 0) -> list[RunConfig]:
    """The candidate runs of one arm: `base` with role "select:<arm>", a held-out validation split, one seed,
    and each learning rate of the grid (`epochs`: shorter selection runs; None keeps the arm's own)."""
    lrs = tuple(float(lr) for lr in lrs)
    if not lrs or any(not (math.isfinite(lr) and lr > 0) for lr in lrs):
        raise ValueError(f"the lr grid must be a non-empty list of positive numbers, got {lrs!r}")
    if len(set(lrs)) != len(lrs):
        raise ValueError(f"the lr grid has duplicates: {lrs!r}")
    if not arm or ":" in arm:
        raise ValueError(f"arm must be a non-empty name without ':', got {arm!r}")
    if val_size < 1:
        raise ValueError(f"val_size must be >= 1 (selection needs held-out data), got {val_size!r}")
    epochs = base.train.epochs if epochs is None else int(epochs)
    data = replace(base.data, val_size=val_size, fold=None)
    return [base.with_(role=f"{ROLE_PREFIX}{arm}", seed=seed, data=data,
                       train=replace(base.train, lr=lr, epochs=epochs)) for lr in lrs]


def validation_view(record: dict[str, Any]) -> dict[str, Any]:
    """What selection may see of a run: its lr, epochs, status and val_* metrics, nothing measured on test."""
    train = record["config"]["train"]
    metrics = record.get("metrics", {})
    # A "chance" status is judged on the test accuracy (kdutils.training.runner.chance_status), so selection must not
    # read it: a run that finished ranks by its validation numbers (a run at chance ranks low on them anyway);
    # only "diverged", decided during training, marks a candidate as failed here.
    status = "diverged" if record["status"] == "diverged" else "ok"
    view = {"lr": float(train["lr"]), "epochs": int(train["epochs"]), "status": status}
    if status == "ok":
        missing = [k for k in VAL_METRICS if k not in metrics]
        if missing:
            raise ValueError(f"run {record.get('key')} has no {', '.join(missing)}: selection runs need "
                             "DataConfig.val_size > 0 (see selection_configs)")
    view.update({k: float(metrics[k]) for k in VAL_METRICS if k in metrics})
    return view


def _rank(view: dict[str, Any]) -> tuple:
    """Sort key, best first: finished runs before failed ones, higher val accuracy, lower val NLL, lower lr."""
    ok = view["status"] == "ok"
    return (not ok, -view.get("val_accuracy", -math.inf) if ok else 0.0,
            view.get("val_nll", math.inf) if ok else 0.0, view["lr"])


def choose(arm: str, views: Iterable[dict[str, Any]]) -> Selection:
    """Pick the best candidate from validation views (see `validation_view`)."""
    views = [dict(v) for v in views]
    if not views:
        raise ValueError(f"no selection runs for arm {arm!r}")
    if all(v["status"] != "ok" for v in views):
        raise ValueError(f"every selection run of arm {arm!r} failed ({[v['status'] for v in views]}); "
                         "widen the lr grid towards smaller rates")
    best = min(views, key=_rank)
    rows = tuple({**v, "arm": arm, "chosen": v is best} for v in sorted(views, key=lambda v: v["lr"]))
    return Selection(arm, best["lr"], best["epochs"], rows)


def load_selection(arm: str, cfgs: Sequence[RunConfig], store: ResultStore | None = None) -> Selection | None:
    """The arm's selection from recorded runs, or None while any candidate is still missing."""
    store = store or ResultStore()
    records = [store.get(c) for c in cfgs]
    found = [r for r in records if r is not None]
    if len(found) < len(records):
        return None
    return choose(arm, (validation_view(r) for r in found))


def run_selection(selections: dict[str, Sequence[RunConfig]], store: ResultStore | None = None,
                  progress: bool = True) -> dict[str, Selection]:
    """Train the missing candidates of every arm (candidates with the same lr train together) and choose."""
    from kdutils.training.group_runner import run_grouped

    store = store or ResultStore()
    run_grouped([c for cfgs in selections.values() for c in cfgs], store, progress=progress)
    out = {}
    for arm, cfgs in selections.items():
        sel = load_selection(arm, cfgs, store)
        if sel is None:
            raise RuntimeError(f"selection runs of arm {arm!r} are missing after training")
        out[arm] = sel
    return out



def edge_of(lr: float, grid: Iterable[float]) -> str:
    """"top" / "bottom" when `lr` is the grid's largest / smallest rate, "" inside it (a one-rate grid ranks
    nothing: every choice is at its edge, "top")."""
    g = sorted(float(x) for x in grid)
    if len(g) < 2:
        return "top"
    return "top" if math.isclose(lr, g[-1]) else "bottom" if math.isclose(lr, g[0]) else ""


def extend_at_edges(grid: Sequence[float], chosen_on: Callable[[tuple[float, ...]], float | None],
                    max_extensions: int, factor: float) -> tuple[tuple[float, ...], float | None]:
    """(the grid to train, the chosen rate or None): while the rate ``chosen_on(grid)`` picks sits at an edge and
    fewer than ``max_extensions`` rates were added, add the next rate past that edge (times or divided by
    ``factor``) and choose again. ``chosen_on`` returns None while a candidate of its grid is not recorded, which
    ends the walk there: the returned grid then names the candidates to train next. Deterministic from the
    records, so a page and a training process agree on the grid."""
    if max_extensions < 0 or factor <= 1:
        raise ValueError(f"max_extensions must be >= 0 and factor > 1, got {max_extensions!r} and {factor!r}")
    g = sorted(float(x) for x in grid)
    for ext in range(max_extensions + 1):
        lr = chosen_on(tuple(g))
        if lr is None:
            return tuple(g), None
        edge = edge_of(lr, g)
        if not edge or ext == max_extensions:
            return tuple(g), lr
        g = g + [g[-1] * factor] if edge == "top" else [g[0] / factor] + g
    raise AssertionError("unreachable")


def edge_notes(rows: Iterable[dict[str, Any]], prefix: str = "") -> list[str]:
    """One sentence per arm (rows of `Selection.rows`: arm, lr, val_accuracy, chosen) whose chosen rate is the
    lowest or highest of its grid: a rate at an edge may be the edge of the grid, not the best rate."""
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(str(r["arm"]), []).append(r)
    notes = []
    for arm, g in by_arm.items():
        chosen = [r for r in g if r.get("chosen")]
        if not chosen or len(g) < 2:
            continue
        lr, acc = float(chosen[0]["lr"]), float(chosen[0].get("val_accuracy") or math.nan)
        edge = edge_of(lr, (float(r["lr"]) for r in g))
        if edge:
            accs = [float(r.get("val_accuracy") or math.nan) for r in g]
            notes.append(f"{prefix}{arm}: chose {lr:g}, the {'lowest' if edge == 'bottom' else 'highest'} rate of its "
                         f"grid (validation accuracy {acc:.1%}; the candidates span "
                         f"{(max(accs) - min(accs)) * 100:.1f} points)")
    return notes

__all__ = ["ROLE_PREFIX", "Selection", "VAL_METRICS", "choose", "edge_notes", "edge_of", "extend_at_edges",
           "load_selection", "run_selection",
           "selection_configs", "validation_view"]
