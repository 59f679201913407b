"""LS-KD recipe v3's design arithmetic (`power_v3`): variance components against a hand computation, the
detectable effect against the exact power of the t test (noncentral t), and the attempt-1 records it reads."""
import math
from pathlib import Path

import pytest
from scipy import stats

from kdutils.chapters.ls_kd import power_v3 as pw


def test_variance_components_by_hand():
    # pair means 0 and 2 (variance 2), each pair's seeds at mean -1 and +1 (variance 2): sigma_seed^2 = 2 and
    # sigma_teacher^2 = 2 - 2 / 2 = 1
    d = {(1, 0): -1.0, (1, 1): 1.0, (2, 0): 1.0, (2, 1): 3.0}
    s_t, s_w, k = pw.variance_components(d)
    assert (s_t, s_w, k) == (pytest.approx(1.0), pytest.approx(math.sqrt(2.0)), 2)
    # all the spread within pairs: the teacher component is floored at 0, never negative
    assert pw.variance_components({(1, 0): -1.0, (1, 1): 1.0, (2, 0): -1.0, (2, 1): 1.0})[0] == 0.0
    with pytest.raises(ValueError, match="two or more pairs"):
        pw.variance_components({(1, 0): 0.0, (1, 1): 1.0, (2, 0): 3.0})


@pytest.mark.parametrize("n_pairs, n_seeds", [(3, 2), (5, 3), (10, 1)])
def test_detectable_effect_has_80_percent_power(n_pairs, n_seeds):
    s_t, s_w = 0.3, 0.4
    delta = pw.detectable_effect(s_t, s_w, n_pairs, n_seeds)
    se = math.sqrt((s_t ** 2 + s_w ** 2 / n_seeds) / n_pairs)
    df = n_pairs - 1
    crit = stats.t.ppf(0.975, df)
    exact = stats.nct.sf(crit, df, delta / se) + stats.nct.cdf(-crit, df, delta / se)
    assert exact == pytest.approx(0.80, abs=1e-6)  # the exact power of the two-sided t test over pairs
    assert pw.detectable_effect(s_t, s_w, n_pairs + 2, n_seeds) < delta  # more pairs detect less
    with pytest.raises(ValueError, match="n_pairs"):
        pw.detectable_effect(s_t, s_w, 1, 3)


def test_attempt_1_records_are_found_and_its_teachers_fail_the_convergence_standard():
    """The committed records of attempt 1 at `cpu`: eight teachers (four per LS value), none converged, and the
    LS - plain differences the power estimate reads."""
    from kdutils.chapters.ls_kd import page_v3, report_v3
    from kdutils.chapters.ls_kd.recipe_v3 import EARLIER_V3
    from kdutils.store.store import ResultStore

    r = EARLIER_V3["cpu"][0]
    store = ResultStore(Path(__file__).resolve().parents[1] / "results")  # the tests' default store is scratch
    teachers = report_v3.earlier_teacher_records(r, store)
    assert sorted((ls, pair) for ls, pair, _ in teachers) == [(ls, i) for ls in (0.0, 0.1) for i in (1, 2, 3, 4)]
    frame = page_v3.teacher_frame(teachers, store)
    assert set(frame.converged) == {"no"} and (frame["final training accuracy (%)"] > 90).all()
    diffs = pw.recorded_differences(r, store)
    assert len(diffs[1.0]) >= 4 and {pair for pair, _ in diffs[1.0]} <= {1, 2, 3, 4}
    (text, table), (_, power) = page_v3.earlier_attempts("cpu", store)  # what the report page shows of it
    assert "**Attempt 1**" in text and "8 of its 8 recorded teachers fail" in text
    assert table.caption.startswith("Attempt 1's teachers") and "tau 1: sigma_teacher" in power.data


def _teacher_record(cfg, accs):
    return {"status": "ok", "metrics": {"accuracy": 0.9}, "history": [{"epoch": i + 1, "train_acc": a}
                                                                      for i, a in enumerate(accs)],
            "config": cfg.to_dict(), "n_train": cfg.data.n_train, "wall_time_s": 1.0}


@pytest.mark.parametrize("accs, label", [
    ([0.67, 0.82, 0.85, 0.888, 0.899, 0.903, 0.908, 0.911], "not testable at this scale"),  # still rising
    ([0.80, 0.95, 0.97, 0.980, 0.981, 0.981, 0.981, 0.981], "not yet run"),  # converged: nothing to fall back on
])
def test_before_the_current_attempt_runs_the_earlier_attempts_gate_is_the_verdict(tmp_path, accs, label):
    from kdutils.chapters.ls_kd import recipe_v3 as rv3, report_v3
    from kdutils.store.store import ResultStore

    first = rv3.EARLIER_V3["cpu"][0]
    store = ResultStore(tmp_path)
    for ls in first.ls_values:
        for seed in first.teacher_seeds:
            cfg = rv3.teacher_config("cpu", ls, 0.1, seed, first)
            store.put(cfg, _teacher_record(cfg, accs))
    vs = report_v3.verdicts("cpu", store)
    assert len(vs) == 7 and {v.label for v in vs} == {label}
    if label.startswith("not testable"):
        assert "attempt 1" in vs[0].scale and "teachers converged" in vs[0].reason
