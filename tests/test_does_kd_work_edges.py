"""Recipe v3 of the fidelity chapter: a rate grid whose choice sits at an edge is extended past it, from the
records, by the shared `tuning.extend_at_edges`; the schedule trains the added candidates, and a choice that
stays inside keeps every v2 run."""
from __future__ import annotations

import math

import pytest

from kdutils.chapters.does_kd_work import matched, plan as dkw, schedule
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import edge_of, extend_at_edges


def _peak_at(best: float):
    """A chooser whose validation optimum is `best` (the grid rate nearest it in log distance)."""
    return lambda grid: min(grid, key=lambda lr: abs(math.log(lr / best)))


def test_extension_walks_past_the_edge_until_the_choice_is_inside():
    assert extend_at_edges((0.05, 0.1, 0.2), _peak_at(0.1), 2, 2.0) == ((0.05, 0.1, 0.2), 0.1)  # inside: no change
    assert extend_at_edges((0.05, 0.1, 0.2), _peak_at(0.3), 2, 2.0) == ((0.05, 0.1, 0.2, 0.4, 0.8), 0.4)
    assert extend_at_edges((0.05, 0.1, 0.2), _peak_at(0.01), 2, 2.0) == ((0.0125, 0.025, 0.05, 0.1, 0.2), 0.0125)
    g, lr = extend_at_edges((0.05, 0.1, 0.2), _peak_at(0.01), 2, 2.0)
    assert edge_of(lr, g) == "bottom"  # two extensions spent: the edge stays, and is reported
    # a candidate not recorded yet stops the walk there: the grid names what to train next
    recorded = {0.05, 0.1, 0.2}
    assert extend_at_edges((0.05, 0.1, 0.2), lambda g: _peak_at(1.0)(g) if set(g) <= recorded else None, 2, 2.0) \
        == ((0.05, 0.1, 0.2, 0.4), None)
    with pytest.raises(ValueError, match="factor > 1"):
        extend_at_edges((0.1,), _peak_at(0.1), 1, 1.0)


def _record(store: ResultStore, job, val_accuracy: float) -> None:
    store.put(job, {"status": "ok", "metrics": {"val_accuracy": val_accuracy, "val_nll": 1 - val_accuracy,
                                                "accuracy": val_accuracy}, "wall_time_s": 1.0})


def test_v3_extends_the_teacher_grid_where_v2_chose_its_top_and_keeps_the_choice_when_the_new_rate_loses(tmp_path):
    store = ResultStore(tmp_path)
    accs = {0.05: 0.878, 0.1: 0.888, 0.2: 0.892}  # v2's Fashion-MNIST teacher selection: the top chosen
    for cfg in dkw.teacher_selection("cpu", version="v3"):
        _record(store, cfg, accs[cfg.train.lr])
    assert [c.train.lr for c in dkw.teacher_selection("cpu", version="v2", store=store)] == [0.05, 0.1, 0.2]
    grid = [c.train.lr for c in dkw.teacher_selection("cpu", version="v3", store=store)]
    assert grid == [0.05, 0.1, 0.2, 0.4]
    assert dkw.plan("cpu", store=store, version="v3").teacher is None  # the new candidate is not recorded yet
    _record(store, dkw.teacher_config("cpu", 0, lr=0.4, version="v3"), 0.885)  # it loses: 0.2 is now inside
    assert len(dkw.teacher_selection("cpu", version="v3", store=store)) == 4
    assert dkw.plan("cpu", store=store, version="v3").teacher_lr == 0.2


def test_the_schedule_trains_the_added_candidates_until_every_choice_is_inside(tmp_path, monkeypatch):
    """Every run recorded by a stand-in trainer whose validation accuracy peaks at 0.3 (teachers) and 0.04
    (students); the phases grow until each choice is inside its grid (or two rates were added)."""
    store = ResultStore(tmp_path)

    def fake_run(job, store_, progress):
        best = 0.3 if isinstance(job, RunConfig) else 0.04
        lr = job.train.lr if isinstance(job, RunConfig) else job.lr
        _record(store_, job, 0.9 - 0.01 * abs(math.log(lr / best)))
        return {}
    monkeypatch.setattr(schedule, "_run_job", fake_run)
    schedule.run("cpu", ("fashion_mnist",), (1,), "v3", store, progress=False)
    p = dkw.plan("cpu", store=store, version="v3")
    assert p.teacher_lr == 0.4 and [c.train.lr for c in dkw.teacher_selection("cpu", version="v3", store=store)] \
        == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert p.lrs["crop_flip"] == 0.05  # 0.04 lies inside (0.025, 0.1): no extension
    assert all(store.get(s) is not None for s in p.specs(1))  # claim 1's students at the chosen rates
    short = matched.chosen("cpu", "fashion_mnist", store, "v3")
    assert short is not None and short.lr == 0.4  # plain models: grid 0.025-0.2 + 0.4 + 0.8, peak at 0.3
    assert [c.train.lr for c in matched.selection("cpu", "fashion_mnist", "v3", store)] == [
        0.025, 0.05, 0.1, 0.2, 0.4, 0.8]
