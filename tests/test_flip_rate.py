"""The flip rate (top-1 changes under a transformation), the invariance measure that does not move with
confidence: a hand-computed example, its behaviour under a change of confidence, and the runner recording it."""
from __future__ import annotations

import pytest
import torch

from kdutils.config import DataConfig, RunConfig
from kdutils.data.datasets import ArrayDataset
from kdutils.metrics import flip_rate, invariance_metric
from kdutils.training import runner


def test_flip_rate_hand_computed():
    # argmax before: 0, 1, 1, 0, 2; after: 1, 1, 0, 0, 2 -> samples 0 and 2 flip: 2/5.
    before = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.5, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    after = torch.tensor([[1.0, 2.0, 0.0], [0.0, 3.0, 1.0], [2.0, 1.0, 0.0], [4.0, 1.0, 0.0], [0.1, 0.2, 0.9]])
    assert flip_rate(before, after) == pytest.approx(2 / 5)
    assert flip_rate(before, before) == 0.0
    # probabilities give the same answer as logits (same argmax)
    assert flip_rate(before.softmax(1), after.softmax(1)) == pytest.approx(2 / 5)


def test_flip_rate_ignores_confidence_where_im_does_not():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 10, generator=g), torch.randn(200, 10, generator=g)
    mixed = torch.where(torch.rand(200, 1, generator=g) < 0.3, b, a)  # about 30% of the rows change
    im = [invariance_metric((s * a).softmax(1), (s * mixed).softmax(1)) for s in (1.0, 20.0)]
    fr = [flip_rate(s * a, s * mixed) for s in (1.0, 20.0)]
    assert fr[0] == fr[1] > 0.1  # sharpening every output changes no decision
    assert im[1] > 1.5 * im[0]  # but moves IM a lot (0.30 -> 0.55 here)


def test_flip_rate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        flip_rate(torch.zeros(3, 4), torch.zeros(3, 5))


def test_runner_records_flip_rate_next_to_im(one_thread):
    """A model that reads only the first element of a set flips its decision when the set is permuted; the
    record of evaluate() carries exactly the flip rate recomputed by hand."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, 3, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    ds = ArrayDataset(x, y, ["a", "b", "c"], "toy")
    splits = runner.Splits(ds, None, ds, None, None)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(15, 3))
    runner.INVARIANCE_TRANSFORMS.setdefault("_test_reverse", lambda t, _g: t.flip(1))
    cfg = RunConfig(experiment="t", role="student", model="mlp", data=DataConfig(dataset="mnist"),
                    invariance="_test_reverse")
    metrics = runner.evaluate(cfg, model, None, splits, torch.device("cpu"))
    with torch.no_grad():
        expected = (model(x).argmax(1) != model(x.flip(1)).argmax(1)).double().mean().item()
    assert metrics["flip_rate"] == pytest.approx(expected)
    assert 0 < metrics["flip_rate"] < 1
