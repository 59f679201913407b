"""The TGeo-KD chapter's configs (not yet wired into the runner) and the bilevel benchmark's plumbing."""
import pytest

from kdutils.experiments import tgeo
from kdutils.tgeo.bench import bench_bilevel_vs_plain


def test_arms_configs_are_distinct_and_validated():
    teacher = tgeo.teacher_config("smoke")
    configs = tgeo.all_arm_configs("smoke", teacher, {a: 0.05 for a in tgeo.ARMS})
    assert len({c.key() for c in configs}) == len(configs) == len(tgeo.ARMS) * len(tgeo.recipe("smoke").seeds)
    assert tgeo.arm_config("smoke", teacher, "vanilla_a0.3", 0.05).alpha == 0.3
    assert tgeo.ARMS["tgeo_inter"].features == "inter"
    assert all(c.data.val_size > 0 for c in configs)  # f_w and lr selection need a validation split
    with pytest.raises(ValueError, match="unknown arm 'tgeo'"):
        tgeo.arm_config("smoke", teacher, "tgeo", 0.05)
    with pytest.raises(ValueError, match=r"no selected lr for arm\(s\) \['rw'\]"):
        tgeo.all_arm_configs("smoke", teacher, {a: 0.05 for a in tgeo.ARMS if a != "rw"})
    cifar = tgeo.recipe("cpu", dataset="cifar100")
    assert (cifar.teacher, cifar.student) == ("resnet56", "resnet20")
    mot = tgeo.motivation_configs("smoke", teacher, 0.05)
    assert [c.alpha for k, c in mot.items() if k != "motivation_pre"] == list(tgeo.MOTIVATION_ALPHAS)


def test_bench_reports_the_three_step_costs(one_thread):
    out = bench_bilevel_vs_plain(batch_size=16, in_shape=(8,), hidden=(8,), num_classes=3, min_run_time=0.01,
                                 verbose=False)
    assert set(out) == {"plain_kd_s", "tgeo_student_only_s", "tgeo_bilevel_s", "ratio_bilevel_over_plain"}
    assert all(v > 0 for v in out.values())
