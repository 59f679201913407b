"""kdutils.chapters.invariance.pictures and the ModelNet40 demo's record reading: pictures and prose from data and records,
never from training."""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdutils.chapters.invariance import pictures as pics, modelnet_demo
from kdutils.store.store import ResultStore


def test_without_checkpoints_the_page_says_predictions_need_the_runs():
    assert "Predictions need the `cpu` runs" in pics.describe_predictions(None, 7)


def test_prediction_sentence_reads_the_probabilities():
    p = pics.Predictions("MLP student", np.eye(10)[7] * 0.9 + 0.01, np.eye(10)[3] * 0.6 + 0.04)
    text = pics.describe_predictions([p], 7)
    assert "says 7 (91%) on the original and 3 (64%)" in text
    assert "L1 change of its probabilities: 1.74" in text  # |0.91-0.04| + |0.01-0.64| + 8 * |0.01-0.04|


def test_figures_have_one_panel_per_view():
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 10:18, 12] = 255
    assert len(pics.digit_figure(img, img, 1).axes) == 2
    p = pics.Predictions("t", np.full(10, 0.1), np.full(10, 0.1))
    fig = pics.digit_figure(img, img, 1, [p, p])
    assert len(fig.axes) == 4 and len(fig.legends) == 1
    pts = torch.rand(20, 3)
    fig2 = pics.pointset_figure(pts, pts.flip(0), pts + 0.1, 3)
    assert len(fig2.axes) == 4  # three panels and the colour bar
    plt.close("all")


@pytest.mark.skipif(not os.environ.get("KDUTILS_DATA"), reason="needs the MNIST files ($KDUTILS_DATA)")
def test_examples_are_the_transformations_the_chapter_measures(tmp_path, monkeypatch):
    img, shifted, label = pics.mnist_example(0)
    assert torch.equal(torch.roll(img, pics.MNIST_SHIFT, dims=(1, 2)), shifted)
    pts, perm, moved, _ = pics.set_mnist_example(0, n_points=50)
    assert sorted(map(tuple, perm.tolist())) == sorted(map(tuple, pts.tolist()))  # same set, another order
    delta = moved - pts
    assert torch.allclose(delta[:, :2], delta[:1, :2].expand_as(delta[:, :2]))  # one vector for every point
    assert delta[:, :2].abs().max() <= pics.SET_TRANSLATION and torch.all(delta[:, 2] == 0)
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path))  # an empty cache: no checkpoints, nothing trained
    assert pics.mnist_predictions(img, shifted, "smoke") is None
    assert not any(tmp_path.rglob("*.pt"))


def _record(role, model, im, acc=0.05, alpha=0.0):
    return {"status": "ok", "key": f"{role}-{model}", "n_train": 127, "n_test": 29, "wall_time_s": 1.0,
            "provenance": {"device": "cpu: x86_64, 2 threads"},
            "metrics": {"accuracy": acc, "im_l1": im},
            "config": {"profile": "cpu", "role": role, "model": model, "alpha": alpha, "tau": 4.0,
                       "data": {"dataset": "modelnet40", "options": {"n_points": 256}}}}


def test_modelnet_demo_reads_its_records(tmp_path):
    folder = tmp_path / modelnet_demo.EXPERIMENT
    folder.mkdir()
    recs = [_record("teacher", "dgcnn", 3e-4), _record("student", "deepsets_inv", 2e-3),
            _record("distilled", "deepsets_inv", 1e-3, alpha=1.0)]
    other = dict(_record("teacher", "dgcnn", 1.0), key="other")
    other["config"] = {**other["config"], "data": {"dataset": "set_mnist_jitter", "options": {}}}
    for r in [*recs, other]:  # the store names a record's file by its key
        (folder / f"{r['key']}.json").write_text(json.dumps(r))
    store = ResultStore(tmp_path)
    got = modelnet_demo.demo_records("cpu", store)
    assert len(got) == 3  # the set-MNIST record is not a ModelNet40 run
    text = modelnet_demo.demo_prose(got)
    assert text.startswith("**What this page shows: a pipeline demo on a 156-shape subset of ModelNet40, not a result.**")
    assert "3 of the 3 runs are at chance under the current rule" in text  # acc 0.05 <= the 40-class line
    assert "3 runs are recorded, each trained on 127 shapes and tested on 29, 256 points per shape, on CPU (2 threads)." in text
    assert "IM is at most 0.0003, below" in text
    table = modelnet_demo.demo_table(got)
    assert list(table.arm)[0] == "teacher (DGCNN)" and table.tau.isna().sum() == 2
    assert "Not yet run" in modelnet_demo.demo_prose(modelnet_demo.demo_records("smoke", store))


def test_recorded_predictions_are_read_back_only_for_the_same_runs(tmp_path):
    """Checkpoints stay out of git: the page falls back on predictions recorded with the keys of their runs."""
    path = tmp_path / "pictures" / "p.json"
    path.parent.mkdir()
    model = {"name": "MLP student", "original": [0.1, 0.9], "shifted": [0.6, 0.4]}
    path.write_text(json.dumps({"keys": ["teacher-key", "student-key"], "models": [model]}))
    preds = pics._read_predictions(path, ["teacher-key", "student-key"])
    assert [p.name for p in preds] == ["MLP student"]
    assert np.allclose(preds[0].shifted, [0.6, 0.4])
    assert "says 1 (90%) on the original and 0 (60%)" in pics.describe_predictions(preds, 1)
    assert pics._read_predictions(path, ["teacher-key", "another-student"]) is None  # other runs: not theirs
    path.write_text('{"keys": ["teacher-')  # truncated
    with pytest.warns(UserWarning, match="damaged predictions record"):
        assert pics._read_predictions(path, ["teacher-key", "student-key"]) is None
