"""The invariance-KD chapter: IM transformations, point-set augmentations, the protocol's run configs, the
verdict rules on hand-made tables, and a tiny end-to-end run on synthetic data (no dataset needed)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kdutils.chapters.invariance import plan as inv, report, claims, figures, tables, recipes
from kdutils.data import pointsets, symmetry
from kdutils.data.datasets import ArrayDataset
from kdutils.data.device_loader import DeviceLoader, RandomPermute, RandomTranslate, parse_augment
from kdutils.models import build_model
from kdutils.store.store import ResultStore
from kdutils.training import runner


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
    for name, t in symmetry.TRANSFORMATIONS.items():
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
    from kdutils.data.registry import load_dataset

    grid = _grid_sets(32, 8)
    monkeypatch.setattr(pointsets, "load_set_mnist",
                        lambda split, root=None, download=None, **kw: ArrayDataset(grid, torch.arange(32) % 10,
                                                                                   [], "set_mnist"))
    a, b = load_dataset("set_mnist_jitter", "test"), load_dataset("set_mnist_jitter", "test")
    assert torch.equal(a.x, b.x) and a.name == "set_mnist_jitter"  # fixed per split
    d = a.x - grid
    assert torch.equal(d[..., 2], torch.zeros_like(d[..., 2]))
    assert 0 < d[..., :2].abs().max() <= pointsets.SET_MNIST_JITTER + 1e-7
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
    cfgs = inv.point_configs("cpu", "resnet_mlp", tau=4, fold=2, lrs=None)
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
    assert all(c.kd_direction == "forward" for c in inv.point_configs("cpu", "resnet_mlp", tau=8, fold=0, lrs=None))
    rev = inv.point_configs("cpu", "resnet_mlp", tau=8, fold=0, direction="reverse", lrs=None)
    assert [c.kd_direction for c in rev if c.role == "distilled"] == ["reverse"]


def test_set_pairs_use_their_symmetry_and_students():
    cfgs = inv.point_configs("cpu", "dgcnn_deepsets", tau=1, fold=0, lrs=None)
    assert {c.model for c in cfgs if c.role == "student"} == {"deepsets_inv", "deepsets_equiv"}
    assert {c.invariance for c in cfgs} == {"translate_xy0.25"}
    assert {c.train.augment for c in cfgs if c.role == "student_aug"} == {"translatexy0.25"}
    assert {c.model_kwargs["widths"] for c in cfgs if c.role.startswith("teacher")} == {(16, 16, 32, 64), (16, 16)}
    assert {c.data.dataset for c in cfgs} == {"set_mnist_jitter"}
    cfgs = inv.point_configs("cpu", "deepsets_mlp", tau=1, fold=0, lrs=None)
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
# Three folds of one row of Figure 1 (ResNet -> MLP 4x256), every value chosen by hand; a small fold-to-fold
# wobble (+-0.004) gives the paired intervals a width.

WOBBLE = (-0.004, 0.0, 0.004)


def _row(role, fold, *, acc=0.95, nll=0.2, ece=0.02, im=0.8, flip=0.3, agree=None, agree_t=None, tau=None,
         direction="", val=None, status="ok"):
    w = WOBBLE[fold]
    return {"pair": "resnet_mlp", "dataset": "mnist", "student": "" if role.startswith("teacher") else "mlp256",
            "role": role, "tau": tau, "direction": direction, "fold": fold, "accuracy": acc + w, "nll": nll + w,
            "ece": ece + w / 4, "agreement": agree if agree is None else agree + w,
            "agreement_teacher": agree_t if agree_t is None else agree_t - w, "im_l1": im + w, "flip_rate": flip + w,
            "val_accuracy": val if val is None else val + w, "status": status,
            "failed": status in ("diverged", "chance"), "collapsed": False, "n_train": 8000, "n_test": 5000,
            "device": "cpu: x86_64, 1 threads"}


def _table(*, im_kd=0.78, flip_kd=0.29, agree_kd=0.95, acc_kd=0.97, nll_kd=0.15, ece_kd=0.02, im_aug=0.05,
           flip_aug=0.02, teacher_acc=0.98, folds=(0, 1, 2), kd_status=None, aug_status="ok") -> pd.DataFrame:
    """teacher: IM 0, flip 0; student alone: acc 0.95, IM 0.8, flip 0.3, agrees 85% with the teacher; self:
    IM 0.8, flip 0.3; distilled: the given values at every tau (val accuracy highest at tau 4)."""
    kd_status = kd_status or {}
    rows = []
    for f in folds:
        rows += [_row("teacher", f, acc=teacher_acc, im=0.0, flip=0.0),
                 _row("teacher_prime", f, acc=0.97, im=0.0, flip=0.0),
                 _row("student", f, agree_t=0.85),
                 _row("student_aug", f, im=im_aug, flip=flip_aug, status=aug_status)]
        for tau in recipes.TAUS:
            kw = dict(tau=tau, direction="forward")
            st = kd_status.get((tau, f), "ok")
            rows += [_row("self", f, agree=0.97, **kw), _row("self_aug", f, im=0.5, flip=0.2, agree=0.97, **kw),
                     _row("distilled", f, acc=acc_kd, nll=nll_kd, ece=ece_kd, im=im_kd, flip=flip_kd, agree=agree_kd,
                          val=0.97 if tau == 4.0 else 0.96, status=st, **kw),
                     _row("distilled_prime", f, im=im_kd, flip=flip_kd, agree=agree_kd, **kw)]
    return pd.DataFrame(rows)


def test_claim1_reproduced_when_fidelity_is_high_and_little_of_the_gap_closes():
    t = _table()
    tt = claims.transfer_table(t, "cpu")
    assert list(tt.tau) == list(recipes.TAUS) and set(tt["fidelity gate"]) == {"passes"}
    # g = (0.8 - 0.78) / (0.8 - 0) = 2.5% in every fold, in IM; (0.3 - 0.29) / 0.3 = 3.3% in flip rate
    assert set(tt["decision (IM (L1))"]) == {"reproduced"} and set(tt["decision (flip rate)"]) == {"reproduced"}
    v = claims.verdict_transfer(t, "cpu")
    assert v.label == "reproduced" and tt["gap closed (IM (L1))"].iloc[0].startswith("+2.5%")
    assert [p.key for p in v.parts] == ["ResNet -> MLP 4x256"] and "profile `cpu`" in v.scale and "CPU" in v.scale


def test_claim1_fidelity_gate_and_disagreeing_measures():
    # the KD student agrees with the teacher no more than the student alone does: "even at high fidelity" cannot
    # be tested, so the row (the only one) is not testable
    assert claims.verdict_transfer(_table(agree_kd=0.85), "cpu").label == "not testable at this scale"
    # IM says half the gap closed, the flip rate says almost none: both measures are core, so the contradicted
    # IM makes every temperature, and the claim, "not reproduced"
    v = claims.verdict_transfer(_table(im_kd=0.4, flip_kd=0.29), "cpu")
    assert v.label == "not reproduced" and "IM (L1): not reproduced" in v.parts[0].reason
    # both measures close more than half the gap: not reproduced
    assert claims.verdict_transfer(_table(im_kd=0.4, flip_kd=0.1), "cpu").label == "not reproduced"
    # the per-temperature table labels each temperature as the verdict does: a contradicted measure beside a
    # reproduced one is "not reproduced" there too, and a failed fidelity gate is "not testable", not "inconclusive"
    tt = claims.transfer_table(_table(im_kd=0.4, flip_kd=0.29), "cpu")
    assert set(tt.label) == {"not reproduced"}
    assert set(claims.transfer_table(_table(agree_kd=0.85), "cpu").label) == {"not testable at this scale"}


def test_claims_are_not_testable_when_the_teacher_is_not_clearly_better():
    t = _table(teacher_acc=0.951)  # +0.1 pts over the student: below two binomial standard errors on 5,000
    decision, gap, min_gap = claims.testability(t, "resnet_mlp", "mlp256")
    assert decision.label == "not testable at this scale" and 0.0009 < gap.mean < 0.0011
    assert min_gap == pytest.approx(2 * math.sqrt(0.05 * 0.95 / 5000), rel=1e-3)
    for fn in (claims.verdict_transfer, claims.verdict_augmentation, claims.verdict_generalisation):
        assert fn(t, "cpu").label == "not testable at this scale"


def test_failed_runs_are_counted_not_dropped():
    # one fold of the tau=4 KD arm diverged: scored at chance agreement, so tau=4 fails the fidelity gate, and
    # the claim-3 arm (tau 4, chosen on validation) gets a chance-level fold: accuracy falls within noise
    t = _table(kd_status={(4.0, 1): "diverged"})
    t.loc[t.status == "diverged", ["accuracy", "nll", "ece", "agreement", "im_l1", "flip_rate"]] = np.nan
    tt = claims.transfer_table(t, "cpu")
    assert tt.set_index("tau").loc[4.0, "fidelity gate"] == "fails"
    assert tt.set_index("tau").loc[4.0, "failed KD runs"] == 1
    assert claims.chosen_tau(t, "resnet_mlp", "mlp256") != 4.0  # its failed fold scores chance on validation too
    t = _table()
    t.loc[(t.role == "student") & (t.fold == 1), ["status", "failed"]] = ("chance", True)  # alone failed once
    g = claims.generalisation_table(t, "cpu").iloc[0]
    assert g["accuracy failed"] == 1 and g["accuracy decision"] == "inconclusive at this scale"
    # an augmented student at chance in every fold is scored at the worst IM: augmentation did not win
    t = _table(aug_status="chance")
    assert claims.verdict_augmentation(t, "cpu").label == "not reproduced"
    assert "failed" in claims.verdict_augmentation(t, "cpu").evidence


def test_claims_2_and_3_from_paired_intervals():
    t = _table()
    assert claims.verdict_augmentation(t, "cpu").label == "reproduced"  # aug IM 0.05 < KD 0.78 in every fold
    assert claims.chosen_tau(t, "resnet_mlp", "mlp256") == 4.0  # best validation accuracy
    assert claims.verdict_generalisation(t, "cpu").label == "partly reproduced"  # +2 pts, NLL -0.05; ECE equal
    t = _table(ece_kd=0.01)
    assert claims.verdict_generalisation(t, "cpu").label == "reproduced"  # ECE -0.01 in every fold too
    t = _table(nll_kd=0.3)  # accuracy up, NLL clearly worse: a contradicted part beside a reproduced one
    v = claims.verdict_generalisation(t, "cpu")
    assert v.label == "mixed" and "NLL: not reproduced" in v.parts[0].reason
    t = _table(acc_kd=0.95, nll_kd=0.2)  # KD changes nothing, measured exactly: wholly below the 0.2-pt minimum
    assert claims.verdict_generalisation(t, "cpu").label == "not reproduced"
    kd = t.role == "distilled"  # KD's accuracy wobbles +-3 pts across folds: the interval spans 0 and the minimum
    t.loc[kd & (t.fold == 0), "accuracy"] += 0.03
    t.loc[kd & (t.fold == 1), "accuracy"] -= 0.03
    assert claims.verdict_generalisation(t, "cpu").label == "inconclusive at this scale"
    t = _table(acc_kd=0.93)
    assert claims.verdict_generalisation(t, "cpu").label == "not reproduced"
    t = _table(im_aug=0.9, flip_aug=0.5)  # the augmented student is less invariant than KD
    assert claims.verdict_augmentation(t, "cpu").label == "not reproduced"


def test_paper_numbers_sit_beside_ours():
    t = _table()
    t["im_roll_l2"] = t["im_l1"] / 2
    pb = report.paper_beside_ours(t).set_index("model")
    assert pb.loc["APS-ResNet18 teacher", "accuracy (paper)"] == 0.991
    assert pb.loc["MLP alone", "accuracy"] == pytest.approx(0.95)  # the fold wobble averages out
    assert pb.loc["distilled, tau 4-16", "runs"] == 9  # three temperatures x three folds, forward KL


def test_one_fold_gives_inconclusive_not_a_crash():
    t = _table(folds=(0,))
    assert claims.verdict_transfer(t, "cpu").label == "not testable at this scale"  # no interval for the gap
    empty = tables.results_table("cpu", store=ResultStore("/nonexistent-kdutils-store"))
    for v in claims.chapter_verdicts("cpu", store=ResultStore("/nonexistent-kdutils-store")):
        assert v.label == "not yet run"
    for fn in (claims.verdict_transfer, claims.verdict_augmentation, claims.verdict_generalisation):
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
    train, test, val = _synthetic_sets(200, 0), _synthetic_sets(100, 1), _synthetic_sets(100, 2)
    monkeypatch.setattr(runner, "prepare_data", lambda cfg: runner.Splits(train, val, test, None, None))
    store = ResultStore(tmp_path / "results")
    records = inv.run_point("smoke", "deepsets_mlp", tau=1.0, fold=0, store=store, progress=False)
    assert [r["config"]["role"] for r in records] == ["teacher", "teacher_prime", "student", "student_aug",
                                                      "distilled", "distilled", "distilled_prime", "self",
                                                      "self_aug"]
    m = {(r["config"]["role"], r["config"]["kd_direction"]): r["metrics"] for r in records}
    assert m[("teacher", "forward")]["im_l1"] < 1e-5 and m[("student", "forward")]["im_l1"] > 1e-4
    assert "agreement_tprime" in m[("distilled", "reverse")] and "agreement_tprime" not in m[("self", "forward")]
    # extras were written back to the store, and a second call loads everything without training
    sel = inv.select_lrs("smoke", "deepsets_mlp", store=store)  # recorded, so nothing trains
    assert set(sel) >= {"teacher", "student-mlp", "distilled-mlp-tau1", "self-mlp"}
    lrs = {arm: s.lr for arm, s in sel.items()}
    assert lrs["teacher"] in inv.LR_GRID["smoke"]
    assert "kl_tprime" in store.get(recipes.kd_config("smoke", "deepsets_mlp", "mlp", 1.0, "distilled", 0,
                                                  lrs=lrs))["metrics"]
    assert "agreement_teacher" in m[("student", "forward")] and "flip_rate" in m[("student", "forward")]
    again = inv.run_point("smoke", "deepsets_mlp", tau=1.0, fold=0, store=store, progress=False)
    assert [r["key"] for r in again] == [r["key"] for r in records]
    table = tables.results_table("smoke", store=store)
    assert len(table) == 9 and set(table.student) == {"", "mlp"} and set(table.pair) == {"deepsets_mlp"}
    shown = tables.display_table(table)
    assert len(shown) == 9 and {"IM L1", "flip", "agree", "failed", "lr"} <= set(shown.columns)
    assert set(tables.selection_table("smoke", store=store).pair) == {"deepsets_mlp"}
    assert "arms were selected" in report.selection_markdown("smoke", store=store)
    assert report.summary_markdown("smoke", store=store).startswith("**Our reproduction** (profile `smoke`")
    assert "teachers' IM is below 1% of the students'" in report.invariance_check(records, "deepsets_mlp")
    assert set(report.direction_table(table).direction) == {"forward", "reverse"}
    curves = report.training_curves("smoke", store=store)
    assert len(curves) == 2 and set(curves.epoch) == {1}
    import matplotlib

    matplotlib.use("Agg")
    figs = figures.plot_figure1(table, "smoke")
    assert len(figs) == len(tables.figure_rows("smoke"))
    assert all(len(f.axes) == len(figures.FIGURE_METRICS) for f in figs)


def test_experiment_modules_do_not_import_the_report():
    """The split is one-directional: the reading side (tables, figures, claims, report) reads the experiment
    (recipes, plan), the experiment never imports the reading side."""
    import ast
    import inspect

    for module in (recipes, inv):
        tree = ast.parse(inspect.getsource(module))
        imported = {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for a in n.names} | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        reading = [m for m in imported if m.split(".")[-1] in ("tables", "figures", "claims", "report")
                   and m.startswith("kdutils.chapters.invariance")]
        assert not reading, (module.__name__, reading)
    assert claims.TAUS is recipes.TAUS and tables.PAIRS is recipes.PAIRS


# ---- learning-rate selection ------------------------------------------------------------------------------

def test_selection_holds_out_validation_and_never_reads_test(tmp_path):
    """Fake records for every candidate of both selection stages: validation accuracy favours the smaller rate,
    test accuracy the larger one. The chapter must pick the smaller rate for every arm, and its candidates
    must train on a split with a held-out validation set and no fold."""
    store = ResultStore(tmp_path)
    small, large = inv.LR_GRID["smoke"]
    lrs = None
    for stage in (1, 2):
        plan = inv.selection_plan("smoke", "deepsets_mlp", stage, lrs=lrs)
        for arm, cfgs in plan.items():
            assert {c.train.lr for c in cfgs} == {small, large} and all(c.role == f"select:{arm}" for c in cfgs)
            assert all(c.data.val_size == inv.SELECT_VAL_SIZE["smoke"] and c.data.fold is None for c in cfgs)
            for c in cfgs:
                good = c.train.lr == small
                store.put(c, {"status": "ok", "metrics": {"val_accuracy": 0.9 if good else 0.5, "val_nll": 0.3,
                                                          "accuracy": 0.5 if good else 0.99}})
        sel = inv.select_lrs("smoke", "deepsets_mlp", store=store) if stage == 2 else None
        lrs = {arm: small for arm in plan} if stage == 1 else lrs
    assert set(sel) == {"teacher", "teacher_prime", "student-mlp", "student_aug-mlp", "distilled-mlp-tau1",
                        "distilled-mlp-tau4", "distilled_prime-mlp", "self-mlp", "self_aug-mlp"}
    assert {s.lr for s in sel.values()} == {small}
    # the final runs carry the chosen rates, their teachers too; the reverse KL shares the forward arm's rate
    cfgs = inv.point_configs("smoke", "deepsets_mlp", 4.0, 0, lrs={a: s.lr for a, s in sel.items()})
    assert {c.train.lr for c in cfgs} == {small} and {c.teacher.train.lr for c in cfgs if c.teacher} == {small}
    # by default the point's configs are the selected ones (what the sweep pre-trains and checks)
    assert [c.key() for c in inv.point_configs("smoke", "deepsets_mlp", 4.0, 0, store=store)] == [c.key() for c in cfgs]
    # a missing candidate means "not recorded yet", never a silent default
    empty = ResultStore(tmp_path / "empty")
    assert inv.select_lrs("smoke", "deepsets_mlp", store=empty) is None
    with pytest.raises(inv.SelectionMissing, match="not recorded"):
        inv.point_configs("smoke", "deepsets_mlp", 4.0, 0, store=empty)
