"""Learning-rate selection on validation data: the rule, the configs, and that the test set cannot move it."""
from __future__ import annotations

import pytest
import torch

from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.data.datasets import ArrayDataset
from kdutils.models import mlp
from kdutils.store.store import ResultStore
from kdutils.sweeps import tuning
from kdutils.training import runner


def _record(lr: float, status: str = "ok", **metrics) -> dict:
    return {"key": f"k{lr}", "status": status, "config": {"train": {"lr": lr, "epochs": 3}}, "metrics": metrics}


def test_choose_by_val_accuracy_then_val_nll_failed_runs_last():
    views = [tuning.validation_view(r) for r in (
        _record(0.1, val_accuracy=0.90, val_nll=0.30),
        _record(0.01, val_accuracy=0.95, val_nll=0.20),
        _record(0.02, val_accuracy=0.95, val_nll=0.15),  # tie on accuracy: lower NLL wins
        _record(0.5, "diverged"),
    )]
    sel = tuning.choose("alone", views)
    assert sel.lr == 0.02 and sel.epochs == 3
    assert [r["lr"] for r in sel.rows] == [0.01, 0.02, 0.1, 0.5]
    assert [r["chosen"] for r in sel.rows] == [False, True, False, False]
    # a diverged run never wins, even against a poor finished one
    assert tuning.choose("x", [tuning.validation_view(_record(0.5, "diverged")),
                               tuning.validation_view(_record(0.1, val_accuracy=0.2, val_nll=2.0))]).lr == 0.1
    # "chance" is decided on the test accuracy, so selection ignores it and ranks by validation numbers
    chance = tuning.validation_view(_record(0.5, "chance", val_accuracy=0.99, val_nll=0.01))
    assert chance["status"] == "ok"
    with pytest.raises(ValueError, match="every selection run of arm 'x' failed"):
        tuning.choose("x", [tuning.validation_view(_record(0.5, "diverged"))])


def test_validation_view_carries_no_test_metric():
    view = tuning.validation_view(_record(0.1, val_accuracy=0.9, val_nll=0.3, accuracy=0.1, errors=9000, nll=9.0))
    assert set(view) == {"lr", "epochs", "status", "val_accuracy", "val_nll"}
    with pytest.raises(ValueError, match="has no val_accuracy, val_nll"):
        tuning.validation_view(_record(0.1, accuracy=0.9, nll=0.3))


def test_selection_configs_hold_out_validation_and_change_only_lr():
    base = RunConfig(experiment="e", role="student", model="mlp", data=DataConfig(n_train=100),
                     train=TrainConfig(epochs=20, lr=0.05), seed=3)
    cfgs = tuning.selection_configs(base, "alone", [0.01, 0.1], epochs=4, val_size=30)
    assert [c.train.lr for c in cfgs] == [0.01, 0.1]
    assert all(c.role == "select:alone" and c.seed == 0 and c.train.epochs == 4 and c.data.val_size == 30
               for c in cfgs)
    assert cfgs[0].with_(train=base.train.__class__(epochs=4, lr=0.1)).key() == cfgs[1].key()
    with pytest.raises(ValueError, match="duplicates"):
        tuning.selection_configs(base, "a", [0.1, 0.1])
    with pytest.raises(ValueError, match="positive numbers"):
        tuning.selection_configs(base, "a", [0.1, -1.0])
    with pytest.raises(ValueError, match="without ':'"):
        tuning.selection_configs(base, "select:a", [0.1])


def _blobs(n: int, seed: int, shuffle_labels: bool = False) -> ArrayDataset:
    """Two separable Gaussian blobs in 8 dimensions (per-sample shape (1, 8) like a tiny image)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = (torch.randn(n, 1, 8, generator=g) * 0.5 + (y.float() * 2 - 1).view(n, 1, 1))
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return ArrayDataset(x, y, ["a", "b"], "blobs")


def _select(tmp_path, monkeypatch, test_set: ArrayDataset, name: str) -> tuple[tuning.Selection, list[dict]]:
    train = _blobs(300, 0)
    monkeypatch.setattr(runner, "load_split", lambda dataset, split, options: train if split == "train" else test_set)
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / name / "cache"))
    store = ResultStore(tmp_path / name / "results")
    base = RunConfig(experiment="tune", role="student", model="mlp", model_kwargs={"hidden": [16]},
                     data=DataConfig(dataset="mnist"), train=TrainConfig(epochs=2, batch_size=32, lr=0.1))
    cfgs = tuning.selection_configs(base, "alone", [0.001, 0.03, 0.3], val_size=100)
    sel = tuning.run_selection({"alone": cfgs}, store, progress=False)["alone"]
    return sel, [store.get(c) for c in cfgs]


def test_selection_never_reads_the_test_set(tmp_path, monkeypatch, one_thread):
    clean, clean_records = _select(tmp_path, monkeypatch, _blobs(200, 1), "clean")
    # poison the test split: different images, labels shuffled. Test metrics change; the choice must not.
    poisoned, poisoned_records = _select(tmp_path, monkeypatch, _blobs(200, 7, shuffle_labels=True), "poisoned")
    assert clean.lr == poisoned.lr and clean.rows == poisoned.rows
    assert [r["metrics"]["accuracy"] for r in clean_records] != [r["metrics"]["accuracy"] for r in poisoned_records]
    for rec in clean_records:  # the held-out 100 came out of the 300 training images
        assert rec["n_train"] == 200 and 0.0 <= rec["metrics"]["val_accuracy"] <= 1.0
    # and the rows the chapter shows hold validation numbers only
    assert all(set(row) == {"lr", "epochs", "status", "val_accuracy", "val_nll", "arm", "chosen"}
               for row in clean.rows)


def test_max_norm_projects_incoming_weights_of_hidden_units(one_thread):
    net = mlp.MLP((1, 4), [3, 2], 2, max_norm=1.0)
    with torch.no_grad():
        net.body[1].weight.copy_(torch.tensor([[3.0, 4.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 6.0, 8.0]]))
        net.head.weight.mul_(100.0)
    net(torch.zeros(1, 1, 4))
    w = net.body[1].weight
    # rows with norm 5 and 10 are scaled to norm 1 (direction kept); the short row is untouched
    torch.testing.assert_close(w[0], torch.tensor([0.6, 0.8, 0.0, 0.0]))
    torch.testing.assert_close(w[1], torch.tensor([0.1, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(w[2], torch.tensor([0.0, 0.0, 0.6, 0.8]))
    assert net.body[3].weight.norm(dim=1).max() <= 1.0 + 1e-6
    assert net.head.weight.norm(dim=1).max() > 1.0  # the output layer is not constrained
    with pytest.raises(ValueError, match="max_norm must be a positive"):
        mlp.MLP((1, 4), [3], 2, max_norm=0.0)


def test_max_norm_holds_after_every_training_step(one_thread):
    torch.manual_seed(0)
    net = mlp.MLP((1, 8), [16], 2, max_norm=0.5)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    x, y = torch.randn(64, 1, 8) * 5, torch.randint(0, 2, (64,))
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net(x[:1])  # the next forward projects the step's update
        assert net.body[1].weight.norm(dim=1).max() <= 0.5 + 1e-6


def test_edge_notes_name_a_choice_at_either_end_of_its_grid_and_nothing_inside():
    from kdutils.sweeps.tuning import edge_notes

    def rows(arm, chosen_lr, lrs=(0.01, 0.1, 1.0)):
        return [{"arm": arm, "lr": lr, "val_accuracy": 0.8 + 0.01 * i, "chosen": lr == chosen_lr}
                for i, lr in enumerate(lrs)]
    notes = edge_notes(rows("top", 1.0) + rows("inside", 0.1) + rows("bottom", 0.01), prefix="MNIST ")
    assert len(notes) == 2
    assert notes[0].startswith("MNIST top: chose 1, the highest rate of its grid (validation accuracy 82.0%")
    assert "the candidates span 2.0 points" in notes[0] and "MNIST bottom: chose 0.01, the lowest" in notes[1]
    assert edge_notes(rows("one", 0.1, lrs=(0.1,))) == []  # a grid of one rate has no edge to speak of
