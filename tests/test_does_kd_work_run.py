"""The fidelity chapter's runner and verdicts: a spec trains at smoke into a scratch store and resumes, load-only
mode refuses to train, an empty store gives "not yet run" for every claim, and synthetic records give verdicts."""
from __future__ import annotations

import random

import pytest

from kdutils.chapters.does_kd_work import plan as dkw, report, claims, figures, run as frun
from kdutils.store.store import ResultStore
from kdutils.training.runner import MissingRunError
from kdutils.verdicts.verdict import NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED

data_available = pytest.importorskip("kdutils.data.datasets")


@pytest.fixture
def scratch(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDUTILS_PROGRESS", "0")
    monkeypatch.delenv("KDUTILS_LOAD_ONLY", raising=False)
    frun._TEACHERS.clear()
    yield ResultStore(tmp_path / "results")
    frun._TEACHERS.clear()


def test_spec_trains_at_smoke_resumes_and_records_fidelity(scratch):
    spec = dkw.claim_specs(6, "smoke", teacher_lr=0.1, lrs={"none": 0.05})[0]
    assert spec.r == 0.5
    rec = frun.run_spec(spec, scratch, progress=False)
    assert rec["status"] in ("ok", "chance") and rec["key"] == spec.key()
    m = rec["metrics"]
    for k in ("accuracy", "nll", "ece", "agreement", "kl", "train_agreement", "train_kl", "val_accuracy",
              "val_nll", "teacher_accuracy", "train_distill_loss"):
        assert k in m
    assert rec["lr_used"] == pytest.approx(0.05 * 0.5)  # lr scaled by r, as the authors do
    assert rec["line"]["t"] == list(frun.LINE_POINTS) and len(rec["line"]["loss"]) == len(frun.LINE_POINTS)
    assert rec["provenance"]["device"] and rec["wall_time_s"] > 0
    assert scratch.get(spec) == rec
    again = frun.run_spec(spec, scratch, progress=False)  # resumes: the stored record, nothing trained
    assert again == rec


def test_load_only_raises_missing_run(scratch, monkeypatch):
    monkeypatch.setenv("KDUTILS_LOAD_ONLY", "1")
    spec = dkw.claim_specs(1, "smoke")[0]
    with pytest.raises(MissingRunError, match="does_kd_work --profile smoke"):
        frun.run_spec(spec, scratch, progress=False)


def test_empty_store_gives_not_yet_run(tmp_path):
    verdicts = claims.chapter_verdicts("cpu", ResultStore(tmp_path))
    assert len(verdicts) == len(dkw.CLAIMS) == 6
    assert {v.label for v in verdicts} == {NOT_YET_RUN}


def _fill(store: ResultStore, profile: str = "smoke", teacher_rising: bool = False, student_acc: float = 0.83) -> None:
    """Synthetic records for every run of the smoke plan: students beat plain models (acc + 2 points), agree
    about 90% with their teacher, near-teacher students agree 99.5%, ensembles help. The teachers' training
    accuracy is flat at 95% over their last epochs (converged), or still rising 1 pt per epoch."""
    rng = random.Random(0)
    r = dkw.recipe(profile)

    def put(cfg, metrics, **extra):
        store.put(cfg, {"status": "ok", "metrics": metrics, "provenance": {"device": "cpu: x86_64, 1 threads"},
                        "n_test": 256, "wall_time_s": 1.0, **extra})

    t_lr = r.teacher_lrs[0]
    history = [{"epoch": e, "train_acc": (0.85 + 0.01 * e) if teacher_rising else 0.95} for e in range(1, 11)]
    for cfg in dkw.teacher_selection(profile) + dkw.teacher_configs(profile, lr=t_lr):
        put(cfg, {"accuracy": 0.80 + 0.01 * rng.random(), "val_accuracy": 0.8, "val_nll": 0.5}, history=history)
    lrs = {}
    for fam in dkw.FAMILIES:
        for spec in dkw.selection_specs(fam, profile, teacher_lr=t_lr):
            lrs[fam] = spec.lr
    for claim in dkw.CLAIMS:
        for spec in dkw.claim_specs(claim, profile, teacher_lr=t_lr, lrs=lrs):
            noise = 0.002 * rng.random()
            agr = 0.995 + noise if spec.r is not None else 0.90 + 0.01 * spec.ensemble_size + noise
            m = {"accuracy": student_acc + noise, "agreement": agr, "kl": 0.1, "train_agreement": 0.95 - 0.1 *
                 spec.distill_fraction - (0.05 if spec.policy == "mixup_t4" else 0) + noise,
                 "train_kl": 0.1, "nll": 0.5, "ece": 0.02, "teacher_accuracy": 0.80 + 0.01 * spec.ensemble_size,
                 "train_distill_loss": 0.01 if spec.r is not None else 0.2 + noise, "val_accuracy": 0.8,
                 "val_nll": 0.5}
            put(spec, m, line={"t": [0, 0.5, 1], "loss": [0.2, 0.3, 0.01]}, n_distill=256)


def test_synthetic_records_give_verdicts(tmp_path):
    store = ResultStore(tmp_path)
    _fill(store)
    verdicts = claims.chapter_verdicts("smoke", store)
    assert len(verdicts) == 6 and NOT_YET_RUN not in {v.label for v in verdicts}
    v1, v2, v6 = verdicts[0], verdicts[1], verdicts[5]
    assert v1.label == REPRODUCED, v1.evidence  # beats the plain model, agreement ~90% < 99%
    assert "Fashion-MNIST" in v1.scale and "CPU (1 thread)" in v1.scale
    assert v2.label == REPRODUCED, v2.evidence  # teacher and agreement rise with size, student >= plain
    assert v6.label == REPRODUCED, v6.evidence  # 99.5% at r = 0.5, higher loss from a random init
    assert "a barrier" in v6.evidence
    assert not report.ensemble_table("smoke", store).empty
    assert "not yet run" not in report.paper_table("smoke", store).iloc[0]["ours"]
    assert figures.init_figure(claims.student_table("smoke", store=store)) is not None
    assert all(g.passed for v in (v1, v2, v6) for g in v.gates)


def test_a_teacher_still_learning_makes_the_teacher_claims_untestable(tmp_path):
    store = ResultStore(tmp_path)
    _fill(store, teacher_rising=True)
    labels = [v.label for v in claims.chapter_verdicts("smoke", store)]
    assert [labels[i] for i in (0, 1, 3, 5)] == [NOT_TESTABLE] * 4  # claims 1, 2, 4, 6 need a converged teacher
    assert NOT_TESTABLE not in (labels[2], labels[4])


def test_a_student_clearly_worse_than_the_plain_model_contradicts_claim_1(tmp_path):
    store = ResultStore(tmp_path)
    _fill(store, student_acc=0.70)  # 10 pts below the plain models: beyond the 1-pt margin
    v1 = claims.chapter_verdicts("smoke", store)[0]
    assert v1.label == NOT_REPRODUCED and "core part contradicted: generalises as well" in v1.reason
