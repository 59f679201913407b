"""LS-KD chapter: run_all at smoke into a throw-away store, and the verdict rules on empty and synthetic records."""
import math

import pytest
import torch

from kdutils.chapters.ls_kd import plan as ls_kd, recipes, claims, report, figures, tables
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED

PROFILE = "smoke"


# ---- run_all at smoke ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lskd")
    mp = pytest.MonkeyPatch()
    mp.setenv("KDUTILS_RESULTS", str(root / "results"))
    mp.setenv("KDUTILS_CACHE", str(root / "cache"))
    mp.setenv("KDUTILS_PROGRESS", "0")
    mp.delenv("KDUTILS_LOAD_ONLY", raising=False)
    torch.set_num_threads(1)
    store = ResultStore(root / "results")
    records = ls_kd.run_all(PROFILE, store=store, progress=False)
    yield store, records
    mp.undo()


def test_run_all_records_every_final_run_and_its_analysis(smoke_store):
    store, records = smoke_store
    p = ls_kd.plan(PROFILE, store)
    r = recipes.recipe(PROFILE)
    assert not p.missing()
    assert set(p.teachers) == set(r.ls_values)
    # the matched-entropy arms were planned from the recorded entropies: plain teacher at tau* > tau
    assert set(p.matched) == set(recipes.MATCH_TAUS)
    assert all(tau_plain > tau_ls for tau_ls, tau_plain in p.matched.items())
    finals = [c for cfgs in p.finals.values() for c in cfgs]
    assert len(finals) == recipes.grid_size(PROFILE)["students"]
    assert len(records) == len(finals) + len(p.teachers)
    assert all(store.get(c) is not None for c in p.final_configs())
    for cfg in finals + list(p.teachers.values()):
        a = recipes.load_analysis(cfg, store)
        assert a is not None
        if "skipped" in a:  # only a diverged run has no model to look at
            assert store.get(cfg)["status"] == "diverged"
            continue
        cents = torch.tensor(a["centroids"])
        assert cents.shape == (recipes.NUM_CLASSES, a["feature_dim"]) and torch.isfinite(cents).all()
        if cfg.role == "teacher" or cfg.seed == r.seeds[0]:
            proj = a["projection"]
            assert proj["classes"] == list(recipes.PROJECTION_CLASSES)
            assert len(proj["train_points"]) == len(proj["train_labels"]) > 0
            assert all(len(pt) == 2 for pt in proj["test_points"])
        else:
            assert "projection" not in a
    for ls, cfg in p.teachers.items():
        ent = recipes.load_analysis(cfg, store)["entropy"]
        values = [ent[f"{t:g}"] for t in sorted(recipes.ENTROPY_TAUS)]
        assert all(0 <= v <= math.log(10) + 1e-9 for v in values)
        assert values == sorted(values)  # entropy never decreases with tau


def test_run_all_is_resumable_and_the_report_renders(smoke_store):
    store, records = smoke_store
    again = ls_kd.run_all(PROFILE, store=store, progress=False)
    assert [r["key"] for r in again] == [r["key"] for r in records]  # loaded, not retrained
    verdicts = claims.chapter_verdicts(PROFILE, store)
    assert len(verdicts) == len(claims.CLAIMS) == 5 and all(v.label != NOT_YET_RUN for v in verdicts)
    p = ls_kd.plan(PROFILE, store)
    for view in (tables.accuracy_view, tables.selection_view, tables.runs_view, tables.diffusion_view,
                 tables.diffusion_summary_view, tables.agreement_view, tables.entropy_view, tables.matched_view):
        out = view(PROFILE, store, p)
        html = out.to_html()
        assert "nan" not in html.lower().replace("nanmean", "") and "None" not in html
    assert figures.projection_figure(PROFILE, store, p) is not None
    assert figures.accuracy_figure(PROFILE, store, p) is not None


# ---- verdicts ----------------------------------------------------------------------------------------------------

def test_empty_store_gives_not_yet_run_for_every_claim(tmp_path):
    verdicts = claims.chapter_verdicts(PROFILE, ResultStore(tmp_path))
    assert [v.label for v in verdicts] == [NOT_YET_RUN] * 5
    assert [v.claim for v in verdicts] == list(claims.CLAIMS)
    for view in (tables.accuracy_view, tables.selection_view, tables.diffusion_view, tables.entropy_view,
                 tables.matched_view, tables.agreement_view):
        assert view(PROFILE, ResultStore(tmp_path)) == report.NOT_YET_RUN
    assert figures.projection_figure(PROFILE, ResultStore(tmp_path)) is None


def _centroids(ls: float, tau: float, seed: int) -> list[list[float]]:
    """10 class centroids in 3-D: tops (0, 2, 4, 6) around one point, footwear (5, 7, 9) around another; the LS
    teacher's students at tau > 1 pull each group together (systematic diffusion), the plain teacher's do not."""
    gen = torch.Generator().manual_seed(1000 * seed + int(10 * tau) + int(100 * ls))
    base = {0: (0, 0, 0), 2: (1, 0, 0), 4: (0, 1, 0), 6: (1, 1, 0), 5: (6, 0, 0), 7: (7, 0, 0), 9: (6, 1, 0),
            1: (0, 6, 0), 3: (3, 6, 0), 8: (6, 6, 0)}
    c = torch.tensor([base[k] for k in range(10)], dtype=torch.float64)
    if ls > 0 and tau > 1:
        for group in ((0, 2, 4, 6), (5, 7, 9)):
            centre = c[list(group)].mean(0)
            c[list(group)] = centre + 0.7 * (c[list(group)] - centre)
    return (c + 0.01 * torch.randn(c.shape, generator=gen, dtype=torch.float64)).tolist()


def _fake_store(tmp_path, teacher_acc: float, reverse: bool = False) -> ResultStore:
    """A store with every record the chapter reads, no training: selections, teachers (with entropies and
    matched temperatures), finals and their centroids. Accuracies follow the paper's pattern (or, with `reverse`,
    the LS teacher's students lose less as tau grows)."""
    store = ResultStore(tmp_path)
    r = recipes.recipe(PROFILE)
    dev = {"device": "cpu: x86_64, 1 threads"}

    def put_selection(cfgs):
        for c in cfgs:
            store.put(c, {"status": "ok", "metrics": {"val_accuracy": 0.8, "val_nll": 0.5}})

    def put_run(cfg, acc):
        store.put(cfg, {"status": "ok", "metrics": {"accuracy": acc / 100}, "n_train": 1000, "n_test": 10_000,
                        "provenance": dev})

    for ls in r.ls_values:
        put_selection(recipes.teacher_selection(PROFILE, ls))
        t = recipes.teacher_config(PROFILE, ls, r.teacher_lrs[0])
        put_run(t, teacher_acc)
        analysis = {"centroids": _centroids(0.0, 1.0, 0), "entropy": {"1": 0.3 + ls * 5, "3": 1.5 + ls * 5}}
        if ls == 0.1:
            analysis["matched"] = {"1": 1.23, "3": 3.67}
        store.put(recipes.analysis_config(t), {"status": "ok", "analysis": analysis})
    p = ls_kd.plan(PROFILE, store)
    assert p.matched == {1.0: 1.23, 3.0: 3.67}
    for arm, cfgs in p.selection_runs.items():
        if not arm.startswith("teacher"):
            put_selection(cfgs)
    p = ls_kd.plan(PROFILE, store)
    pattern = {0.0: {1.0: 85.0, 2.0: 85.0, 3.0: 84.5, 64.0: 84.0, 1.23: 84.8, 3.67: 84.6},
               0.1: {1.0: 85.5, 2.0: 84.0, 3.0: 83.0, 64.0: 82.0}}
    if reverse:  # the LS teacher's students hold their accuracy as tau grows; the plain teacher's lose 3 pts
        pattern[0.1] = {1.0: 85.5, 2.0: 85.5, 3.0: 85.4, 64.0: 85.3}
        pattern[0.0].update({2.0: 82.0, 3.0: 81.5, 64.0: 81.0})
    for arm, cfgs in p.finals.items():
        desc = p.arms[arm]
        for c in cfgs:
            jitter = 0.01 * ((c.seed * 7 + len(arm)) % 3)
            acc = 80.0 + c.seed * 0.1 if desc["kind"] == "alone" else pattern[desc["ls"]][desc["tau"]] + c.seed * 0.1
            put_run(c, acc + jitter)
            store.put(recipes.analysis_config(c), {"status": "ok", "analysis": {
                "centroids": _centroids(desc["ls"] or 0.0, desc["tau"] or 1.0, c.seed)}})
    return store


@pytest.fixture
def one_teacher_enough(monkeypatch):
    """The synthetic store has one teacher per label-smoothing value; the rules below are tested as if that were
    enough (the teachers-per-condition gate has its own test)."""
    monkeypatch.setattr(claims, "MIN_TEACHERS", 1)


def test_one_teacher_per_condition_is_not_enough(tmp_path):
    store = _fake_store(tmp_path, teacher_acc=90.0)
    verdicts = claims.chapter_verdicts(PROFILE, store)
    assert {v.label for v in verdicts} == {NOT_TESTABLE}
    assert all("teachers per condition: fails" in v.reason for v in verdicts)


def test_synthetic_records_in_the_papers_pattern_reproduce_every_claim(tmp_path, one_teacher_enough):
    store = _fake_store(tmp_path, teacher_acc=90.0)
    verdicts = claims.chapter_verdicts(PROFILE, store)
    assert [v.label for v in verdicts] == [REPRODUCED] * 5, [(v.label, v.evidence) for v in verdicts]
    assert all("Fashion-MNIST" in v.scale and "CPU (1 thread)" in v.scale for v in verdicts)
    assert "diffusion" in verdicts[2].claim.lower() and "eta_similar" in verdicts[2].effect
    # the diffusion tables see the planted effect: LS students' eta_similar < 0 < eta_dissimilar, plain ~ 0
    rows = claims.diffusion_rows(PROFILE, store)
    ls_rows = rows[(rows.ls == 0.1)]
    assert (ls_rows.eta_similar < 0).all() and (ls_rows.eta_dissimilar > 0).all()
    assert rows[rows.ls == 0.0].eta_similar.abs().max() < 5


def test_a_teacher_no_better_than_the_student_alone_makes_every_claim_untestable(tmp_path, one_teacher_enough):
    store = _fake_store(tmp_path, teacher_acc=80.05)
    verdicts = claims.chapter_verdicts(PROFILE, store)
    assert [v.label for v in verdicts] == [NOT_TESTABLE] * 5


def test_arms_trained_at_different_rates_cannot_be_compared(tmp_path, monkeypatch, one_teacher_enough):
    store = _fake_store(tmp_path, teacher_acc=90.0)
    assert claims.chapter_verdicts(PROFILE, store)[0].label == REPRODUCED
    frame = claims.results_frame
    ls1 = recipes.student_arm(recipes.recipe(PROFILE).student_models[0], 0.1, 1.0)

    def other_rate(*args, **kwargs):  # as if the LS tau = 1 students had been tuned to another rate
        df = frame(*args, **kwargs)
        df.loc[df.arm == ls1, "lr"] = 10 * df.loc[df.arm == ls1, "lr"]
        return df

    monkeypatch.setattr(claims, "results_frame", other_rate)
    v1 = claims.chapter_verdicts(PROFILE, store)[0]
    assert v1.label == NOT_TESTABLE and "one learning rate: fails" in v1.reason


def test_the_opposite_pattern_is_not_reproduced(tmp_path, one_teacher_enough):
    store = _fake_store(tmp_path, teacher_acc=90.0, reverse=True)
    v2 = claims.chapter_verdicts(PROFILE, store)[1]
    assert v2.label == NOT_REPRODUCED and "core part contradicted" in v2.reason
