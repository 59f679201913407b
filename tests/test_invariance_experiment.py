"""The invariance-KD chapter: IM transformations, point-set augmentations, the protocol's run configs, the
verdict rules on hand-made tables, and a tiny end-to-end run on synthetic data (no dataset needed)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kdutils import runner
from kdutils.data import ArrayDataset
from kdutils.device_loader import DeviceLoader, RandomPermute, RandomTranslate, parse_augment
from kdutils.experiments import invariance as inv, invariance_report as report
from kdutils.models import build_model
from kdutils.store import ResultStore


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: extra intra-op threads only spin on the shared 2-core machine. Restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- IM transformations: zero for an invariant model, positive for an MLP ---------------------------------

def _splits(x_train, y_train, x_test, y_test, mean=None, std=None) -> runner.Splits:
    return runner.Splits(ArrayDataset(x_train, y_train, [str(i) for i in range(10)], "t"), None,
                         ArrayDataset(x_test, y_test, [str(i) for i in range(10)], "t"), mean, std)


def _im(model_name: str, transform: str, x: torch.Tensor, mean=None, std=None, **kw) -> float:
    torch.manual_seed(0)
    y = torch.arange(len(x)) % 10
    splits = _splits(x, y, x, y, mean, std)
    model = build_model(model_name, tuple(x.shape[1:]), 10, **kw).eval()
    cfg = runner.RunConfig(experiment="t", role="teacher", model=model_name, invariance=transform)
    return runner.evaluate(cfg, model, None, splits, torch.device("cpu"))["im_l1"]


def test_transformations_are_registered_in_the_runner():
    for name, t in inv.TRANSFORMATIONS.items():
        assert runner.INVARIANCE_TRANSFORMS[name] is t.fn and t.text


def test_im_zero_for_aps_resnet_and_positive_for_mlp_on_images():
    x = torch.randint(0, 256, (24, 1, 28, 28), generator=_gen(1), dtype=torch.uint8)
    assert _im("aps_resnet18", "circshift4", x, (0.13,), (0.31,), width=4) < 1e-5
    assert _im("mlp_256x4", "circshift4", x, (0.13,), (0.31,)) > 1e-3


def test_im_zero_for_set_models_under_their_symmetry_and_positive_otherwise():
    pts = torch.randn(32, 20, 3, generator=_gen(2))
    assert _im("deepsets_inv", "permute", pts) < 1e-6
    assert _im("mlp", "permute", pts, hidden=(32,)) > 1e-3
    # DGCNN sees only x_j - x_i: exact on continuous coordinates (no kNN ties)
    assert _im("dgcnn", "translate_xyz0.1", pts, widths=(8, 8), k=5, emb_dims=16, mlp_widths=(16,)) < 1e-5
    assert _im("deepsets_inv", "translate_xyz0.1", pts) > 1e-4


def test_im_transformations_do_what_they_say():
    pts = torch.rand(50, 16, 3, generator=_gen(3))
    out = runner.INVARIANCE_TRANSFORMS["translate_xy0.25"](pts, _gen(4))
    d = out - pts
    assert torch.equal(d[..., 2], torch.zeros_like(d[..., 2]))  # intensity untouched
    assert torch.allclose(d[..., :2], d[:, :1, :2].expand(-1, 16, -1), atol=1e-6)  # one vector per set
    assert d[..., :2].abs().max() <= 0.25 + 1e-6 and d[:, 0, :2].std() > 0.05
    perm = runner.INVARIANCE_TRANSFORMS["permute"](pts, _gen(5))
    assert torch.equal(perm.sort(dim=1).values, pts.sort(dim=1).values) and not torch.equal(perm, pts)
    img = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    img[:, 0, 10:18, 10:18] = 255
    shifted = runner.INVARIANCE_TRANSFORMS["circshift4"](img, _gen(6))
    assert (shifted.float().sum((1, 2, 3)) == img.float().sum((1, 2, 3))).all()  # wrap-around: mass kept


def _grid_sets(n: int, seed: int) -> torch.Tensor:
    """Sets of 40 distinct pixels of a 28x28 grid in set-MNIST's coordinates, all at intensity 1."""
    g = _gen(seed)
    idx = torch.rand(n, 784, generator=g).argsort(1)[:, :40]
    rows, cols = idx // 28, idx % 28
    return torch.stack([2 * cols / 27 - 1, 1 - 2 * rows / 27, torch.ones_like(rows, dtype=torch.float)], -1).float()


def test_jittered_set_mnist_moves_only_coordinates_and_makes_dgcnn_exact(monkeypatch):
    from kdutils import pointsets
    from kdutils.data import load_dataset

    grid = _grid_sets(32, 8)
    monkeypatch.setattr(pointsets, "load_set_mnist",
                        lambda split, root=None, download=None, **kw: ArrayDataset(grid, torch.arange(32) % 10,
                                                                                   [], "set_mnist"))
    a, b = load_dataset("set_mnist_jitter", "test"), load_dataset("set_mnist_jitter", "test")
    assert torch.equal(a.x, b.x) and a.name == "set_mnist_jitter"  # fixed per split
    d = a.x - grid
    assert torch.equal(d[..., 2], torch.zeros_like(d[..., 2]))
    assert 0 < d[..., :2].abs().max() <= inv.SET_MNIST_JITTER + 1e-7
    kw = dict(widths=(8, 8), k=6, emb_dims=16, mlp_widths=(16,))
    assert _im("dgcnn", "translate_xy0.25", a.x, **kw) < 1e-5


# ---- point-set augmentations ----------------------------------------------------------------------------

def test_point_set_augmentations_parse_and_run_in_the_loader():
    a = parse_augment("translatexy0.25")
    assert isinstance(a, RandomTranslate) and a.max_translation == 0.25 and a.coord_dims == 2
    b = parse_augment("translate0.1")
    assert isinstance(b, RandomTranslate) and b.coord_dims == 3
    assert isinstance(parse_augment("permute"), RandomPermute)
    with pytest.raises(ValueError, match="cannot compose"):
        parse_augment("permute+shift2")
    with pytest.raises(ValueError, match="allowed"):
        parse_augment("translate")
    pts = torch.rand(20, 7, 3, generator=_gen(7))
    loader = DeviceLoader(pts, torch.arange(20), 8, augment="translatexy0.5", seed=1)
    for batch in loader:
        d = batch.x - pts[batch.idx]
        assert torch.equal(d[..., 2], torch.zeros_like(d[..., 2]))
        assert torch.allclose(d[..., :2], d[:, :1, :2].expand(-1, 7, -1), atol=1e-6)
    assert torch.equal(loader.x, pts)  # stored data untouched
    loader = DeviceLoader(pts, torch.arange(20), 8, augment="permute", seed=1)
    batch = next(iter(loader))
    assert torch.equal(batch.x.sort(dim=1).values, pts[batch.idx].sort(dim=1).values)
    with pytest.raises(ValueError, match="point-set data"):
        DeviceLoader(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.arange(4), 2, augment="permute")


# ---- the protocol's run configs ---------------------------------------------------------------------------

def test_point_configs_follow_the_protocol():
    cfgs = inv.point_configs("cpu", "resnet_mlp", tau=4, fold=2)
    roles = [(c.role, c.kd_direction if c.alpha else "") for c in cfgs]
    assert roles == [("teacher", ""), ("teacher_prime", ""), ("student", ""), ("student_aug", ""),
                     ("distilled", "forward"), ("distilled", "reverse"), ("distilled_prime", "forward"),
                     ("self", "forward"), ("self_aug", "forward")]
    by = {r: c for r, c in zip(roles, cfgs)}
    teacher, prime = by[("teacher", "")], by[("teacher_prime", "")]
    student, aug = by[("student", "")], by[("student_aug", "")]
    assert teacher.train.epochs > prime.train.epochs and teacher.model == prime.model == "aps_resnet18"
    assert aug.train.augment == "shift4c" and student.train.augment == "none"
    assert by[("distilled", "forward")].teacher == teacher and by[("distilled_prime", "forward")].teacher == prime
    assert by[("self", "forward")].teacher == student and by[("self_aug", "forward")].teacher == aug
    for c in cfgs:
        assert c.invariance == "circshift4" and c.data.fold == 2 and c.data.k_folds == 5 and c.seed == 2
        assert c.alpha == (1.0 if c.teacher is not None else 0.0)
        assert c.tau == (4.0 if c.teacher is not None else 1.0)
    # no reverse KL at tau 8 under "auto"; explicit directions are honoured
    assert all(c.kd_direction == "forward" for c in inv.point_configs("cpu", "resnet_mlp", tau=8, fold=0))
    rev = inv.point_configs("cpu", "resnet_mlp", tau=8, fold=0, direction="reverse")
    assert [c.kd_direction for c in rev if c.role == "distilled"] == ["reverse"]


def test_set_pairs_use_their_symmetry_and_students():
    cfgs = inv.point_configs("cpu", "dgcnn_deepsets", tau=1, fold=0)
    assert {c.model for c in cfgs if c.role == "student"} == {"deepsets_inv", "deepsets_equiv"}
    assert {c.invariance for c in cfgs} == {"translate_xy0.25"}
    assert {c.train.augment for c in cfgs if c.role == "student_aug"} == {"translatexy0.25"}
    assert {c.model_kwargs["widths"] for c in cfgs if c.role.startswith("teacher")} == {(16, 16, 32, 64), (16, 16)}
    assert {c.data.dataset for c in cfgs} == {"set_mnist_jitter"}
    cfgs = inv.point_configs("cpu", "deepsets_mlp", tau=1, fold=0)
    assert {c.invariance for c in cfgs} == {"permute"} and cfgs[1].model == "deepsets_inv_small"
    mn = inv.point_configs("full", "dgcnn_deepsets", tau=4, fold=0, dataset="modelnet40")
    assert {c.invariance for c in mn} == {"translate_xyz0.1"} and mn[0].data.options == {"n_points": 1000}


def test_chapter_grid_sizes_and_no_duplicates():
    cpu = inv.configs("cpu")
    # per fold: resnet 2 + 20, dgcnn 2 + 2 * 20, deepsets 2 + 20 runs; three folds
    assert len(cpu) == 3 * (22 + 42 + 22) and len({c.key() for c in cpu}) == len(cpu)
    assert not any(c.model == "mlp_2048x4" for c in cpu)
    full = inv.configs("full")
    assert {c.data.fold for c in full} == {0, 1, 2, 3, 4} and any(c.model == "mlp_2048x4" for c in full)
    # fold by fold; within a fold, teachers and students alone come before every KD run
    assert [c.data.fold for c in cpu] == sorted(c.data.fold for c in cpu)
    fold0 = [c for c in cpu if c.data.fold == 0]
    first_kd = next(i for i, c in enumerate(fold0) if c.teacher is not None)
    assert all(c.teacher is not None for c in fold0[first_kd:])


@pytest.mark.parametrize("kw,match", [(dict(pair="nope"), "choose one of: resnet_mlp"),
                                      (dict(pair="resnet_mlp", student="mlp7"), "mlp2048, mlp256"),
                                      (dict(pair="resnet_mlp", direction="both"), "auto, forward, reverse"),
                                      (dict(pair="resnet_mlp", dataset="set_mnist"), "runs on: mnist"),
                                      (dict(pair="resnet_mlp", fold=5), "0..4"),
                                      (dict(), "needs pair=")])
def test_config_errors_name_the_allowed_values(kw, match):
    with pytest.raises(ValueError, match=match):
        inv.point_configs("cpu", **kw)


# ---- verdict rules on hand-made tables -------------------------------------------------------------------

def _row(role, im, acc=0.95, nll=0.2, ece=0.02, tau=None, direction="", student="mlp256", fold=0, agree=None):
    return {"pair": "resnet_mlp", "dataset": "mnist", "student": "" if role.startswith("teacher") else student,
            "role": role, "tau": tau, "direction": direction, "fold": fold, "accuracy": acc, "nll": nll,
            "ece": ece, "agreement": agree, "kl": None, "im_l1": im, "im_l2": im / 2, "collapsed": acc < 0.2,
            "n_train": 6000, "device": "cpu"}


def _table(im_distilled: float, im_aug: float, acc_kd: float, collapse_tau1: bool = False) -> pd.DataFrame:
    rows = []
    for fold in (0, 1):
        rows += [_row("teacher", 1e-7, fold=fold), _row("teacher_prime", 1e-7, fold=fold),
                 _row("student", 0.8, fold=fold), _row("student_aug", im_aug, fold=fold)]
        for tau in inv.TAUS:
            acc = 0.1 if (collapse_tau1 and tau == 1.0) else acc_kd
            rows += [_row("self", 0.8, tau=tau, direction="forward", fold=fold, agree=0.97),
                     _row("self_aug", 0.5, tau=tau, direction="forward", fold=fold, agree=0.97),
                     _row("distilled", im_distilled if acc > 0.2 else 0.0, acc=acc, nll=0.15, ece=0.015, tau=tau,
                          direction="forward", fold=fold, agree=0.98),
                     _row("distilled_prime", im_distilled, tau=tau, direction="forward", fold=fold, agree=0.98)]
    return pd.DataFrame(rows)


def test_verdicts_follow_their_rules():
    t = _table(im_distilled=0.75, im_aug=0.05, acc_kd=0.97, collapse_tau1=True)
    gaps = report.transfer_gaps(t, "cpu")
    # collapsed tau=1 runs are left out; elsewhere g = (0.8 - 0.75) / (0.8 - 1e-7)
    assert list(gaps.tau) == [4.0, 8.0, 16.0]
    assert np.allclose(gaps["gap closed"], 0.05 / (0.8 - 1e-7))
    assert report.verdict_transfer(t, "cpu").label == "reproduced"
    assert report.verdict_augmentation(t, "cpu").label == "reproduced"
    assert report.verdict_generalisation(t, "cpu").label == "reproduced"
    t = _table(im_distilled=0.3, im_aug=0.4, acc_kd=0.90)
    assert report.verdict_transfer(t, "cpu").label == "not reproduced"  # g = 0.5 / 0.8 >= 0.5
    assert report.verdict_augmentation(t, "cpu").label == "not reproduced"
    # accuracy falls but NLL and ECE improve: partly
    assert report.verdict_generalisation(t, "cpu").label == "partly reproduced"
    assert report.verdict_transfer(_table(0.45, 0.1, 0.96), "cpu").label == "partly reproduced"  # g = 0.44
    t = _table(im_distilled=0.75, im_aug=0.01, acc_kd=0.97)
    t.loc[t.role == "student_aug", ["accuracy", "collapsed"]] = (0.12, True)  # a near-constant predictor
    v = report.verdict_augmentation(t, "cpu")
    assert v.label == "not reproduced" and "did not learn" in v.evidence
    empty = report.results_table("cpu", store=ResultStore("/nonexistent-kdutils-store"))
    for fn in (report.verdict_transfer, report.verdict_augmentation, report.verdict_generalisation):
        assert fn(empty, "cpu").label == "not yet run"


def test_kl_gradients_match_the_closed_forms():
    p_t = torch.softmax(torch.tensor([3.0, 0.0, -1.0], dtype=torch.float64), 0)
    z = torch.tensor([0.0, 2.0, 0.5])
    p_s = torch.softmax(z.double(), 0)
    g = report.kl_gradients(p_t, z)
    assert math.isclose(g["forward"], float((p_s - p_t).norm()), rel_tol=1e-9)
    kl = float((p_s * (p_s.log() - p_t.log())).sum())
    assert math.isclose(g["reverse"], float((p_s * (p_s.log() - p_t.log() - kl)).norm()), rel_tol=1e-9)


def test_thread_limit_is_scoped_to_smoke():
    n = torch.get_num_threads()
    with inv.thread_limit("cpu"):
        assert torch.get_num_threads() == n
    torch.set_num_threads(2)
    try:
        with inv.thread_limit("smoke"):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(n)


# ---- end to end on synthetic data -----------------------------------------------------------------------

def _synthetic_sets(n: int, seed: int) -> ArrayDataset:
    """Ten classes of 32-point sets: class c puts its points near a circle of radius (c + 1) / 10."""
    g = _gen(seed)
    y = torch.arange(n) % 10
    angle = torch.rand(n, 32, generator=g) * 2 * math.pi
    r = (y[:, None].float() + 1) / 10
    x = torch.stack([r * angle.cos(), r * angle.sin(), torch.rand(n, 32, generator=g)], dim=-1)
    return ArrayDataset(x.float(), y, [str(i) for i in range(10)], "set_mnist")


def test_run_point_end_to_end_records_im_and_extras(tmp_path, monkeypatch):
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    train, test = _synthetic_sets(200, 0), _synthetic_sets(100, 1)
    monkeypatch.setattr(runner, "prepare_data", lambda cfg: runner.Splits(train, None, test, None, None))
    store = ResultStore(tmp_path / "results")
    records = inv.run_point("smoke", "deepsets_mlp", tau=1.0, fold=0, store=store, progress=False)
    assert [r["config"]["role"] for r in records] == ["teacher", "teacher_prime", "student", "student_aug",
                                                      "distilled", "distilled", "distilled_prime", "self",
                                                      "self_aug"]
    m = {(r["config"]["role"], r["config"]["kd_direction"]): r["metrics"] for r in records}
    assert m[("teacher", "forward")]["im_l1"] < 1e-5 and m[("student", "forward")]["im_l1"] > 1e-4
    assert "agreement_tprime" in m[("distilled", "reverse")] and "agreement_tprime" not in m[("self", "forward")]
    # extras were written back to the store, and a second call loads everything without training
    assert "kl_tprime" in store.get(inv.kd_config("smoke", "deepsets_mlp", "mlp", 1.0, "distilled", 0))["metrics"]
    again = inv.run_point("smoke", "deepsets_mlp", tau=1.0, fold=0, store=store, progress=False)
    assert [r["key"] for r in again] == [r["key"] for r in records]
    table = report.results_table("smoke", store=store)
    assert len(table) == 9 and set(table.student) == {"", "mlp"} and set(table.pair) == {"deepsets_mlp"}
    shown = report.display_table(table)
    assert len(shown) == 9 and {"IM L1", "agree", "collapsed"} <= set(shown.columns)
    assert set(report.direction_table(table).direction) == {"forward", "reverse"}
    curves = report.training_curves("smoke", store=store)
    assert len(curves) == 2 and set(curves.epoch) == {1}
    import matplotlib

    matplotlib.use("Agg")
    fig = report.plot_figure1(table, "smoke")
    assert len(fig.axes) == len(report.figure_rows("smoke")) * len(report.FIGURE_METRICS)


def test_experiment_module_does_not_import_the_report():
    """The split is one-directional: the report reads the experiment, the experiment never imports the report."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(inv))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    modules = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any("invariance_report" in m for m in imported | modules)
    assert report.TAUS is inv.TAUS and report.PAIRS is inv.PAIRS
