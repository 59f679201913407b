"""LS-KD experiment skeleton: the configs say what the paper's recipe says (no training here)."""
import pytest

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
from kdutils.config import RunConfig, run_config_from_dict
from kdutils.losses import kd_objective
from kdutils.models import build_model


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_teacher_and_student_configs_follow_the_paper(profile):
    r = recipes.recipe(profile)
    plain, smoothed = (recipes.teacher_config(profile, ls, r.teacher_lrs[0]) for ls in (0.0, 0.1))
    assert (plain.label_smoothing, smoothed.label_smoothing) == (0.0, 0.1)
    assert plain.alpha == 0.0 and plain.teacher is None and plain.data.dataset == "fashion_mnist"
    assert plain.key() != smoothed.key()
    if profile == "full":  # the smaller ResNet and the teacher's own architecture
        small, same = r.student_models
        assert same == r.teacher_model and small != same
    else:  # cpu/smoke: the teacher-architecture student is dropped (a deviation the chapter states)
        assert len(r.student_models) == 1
    for model in r.student_models:
        build_model(model, (1, 28, 28), 10)  # registered names
        s = recipes.student_config(profile, smoothed, model, 64, r.student_lrs[0])
        assert s.alpha == 1.0 and s.tau == 64.0 and s.kd_direction == "forward"  # KD only, KL(P_t || P_s)
        assert s.teacher == smoothed and s.label_smoothing == 0.0
        assert run_config_from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="not in the"):
        recipes.student_config(profile, smoothed, "resnet110", 1, 0.1)


def test_kd_only_objective_has_no_cross_entropy_term():
    import torch

    s, t = torch.randn(4, 10), torch.randn(4, 10)
    wrong_labels = torch.zeros(4, dtype=torch.long)
    right_labels = t.argmax(dim=1)
    # alpha = 1: the labels cannot matter
    assert torch.equal(kd_objective(s, wrong_labels, t, 3.0, recipes.KD_ALPHA),
                       kd_objective(s, right_labels, t, 3.0, recipes.KD_ALPHA))


def test_selection_uses_a_validation_split_and_one_arm_per_model_ls_tau():
    r = recipes.recipe("cpu")
    t_runs = recipes.teacher_selection("cpu", 0.1)
    assert [c.train.lr for c in t_runs] == list(r.teacher_lrs)
    assert all(c.data.val_size == r.val_size > 0 and c.role == "select:teacher-ls0.1" for c in t_runs)
    teacher = recipes.teacher_config("cpu", 0.1, 0.1)
    s_runs = recipes.student_selection("cpu", teacher, r.student_models[0], 2.0)
    assert {c.role for c in s_runs} == {f"select:{r.student_models[0]}-ls0.1-T2"}
    assert all(c.data.val_size == r.val_size and c.train.epochs == r.select_epochs for c in s_runs)


def test_final_students_cover_every_arm_and_seed_and_demand_chosen_rates():
    teacher = recipes.teacher_config("cpu", 0.0, 0.1)
    r = recipes.recipe("cpu")
    lrs = {recipes.student_arm(m, 0.0, t): 0.05 for m in r.student_models for t in recipes.TAUS}
    finals = recipes.final_students("cpu", teacher, lrs)
    assert len(finals) == len(r.student_models) * len(recipes.TAUS) * len(r.seeds)
    assert len({c.key() for c in finals}) == len(finals)
    assert {c.tau for c in finals} == set(recipes.TAUS)
    arm = recipes.student_arm(r.student_models[0], 0.0, 64.0)
    del lrs[arm]
    with pytest.raises(ValueError, match=f"no chosen learning rate for arm '{arm}'"):
        recipes.final_students("cpu", teacher, lrs)
    sizes = recipes.grid_size("cpu")
    # 2 teachers x 4 taus + 2 matched-entropy arms + the student alone, one student model, every seed
    assert sizes["students"] == (2 * 4 + 2 + 1) * len(r.seeds) and sizes["teachers"] == 2


def test_step_schedule_milestones_at_40_and_80_percent():
    cfg = recipes.teacher_config("full", 0.0, 0.1)
    assert cfg.train.schedule == "step" and cfg.train.milestones == (80, 160)
    assert isinstance(cfg, RunConfig)
