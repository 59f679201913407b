"""The TGeo-KD chapter's configs (not yet wired into the runner) and the bilevel benchmark's plumbing."""
import pytest

from kdutils.chapters.tgeo import plan as tgeo
from kdutils.chapters.tgeo.bench import bench_bilevel_vs_plain


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


def test_every_arm_trains_through_train_arm(one_thread):
    import torch
    from torch import nn

    from kdutils.config import TrainConfig
    from kdutils.data.device_loader import DeviceLoader
    from kdutils.chapters.tgeo.arms import ArmSpec, train_arm

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = 2 * torch.randn(3, 5, generator=g)[y] + torch.randn(60, 5, generator=g)
    teacher = 3 * nn.functional.one_hot(y, 3).float() + torch.randn(60, 3, generator=g)
    train, val = DeviceLoader(x[:45], y[:45], 15), DeviceLoader(x[45:], y[45:], 15)
    for name, spec in tgeo.ARMS.items():
        student = nn.Linear(5, 3)
        res, fnet = train_arm(spec, student, train, TrainConfig(epochs=2, batch_size=15, lr=0.1),
                              teacher_logits=teacher[:45], val_loader=val, progress=False)
        assert res.status == "ok" and len(res.history) == 2, name
        assert (fnet is not None) == (spec.rule == "tgeo"), name
        if spec.rule == "vanilla":
            assert res.history[0]["alpha_mean"] == pytest.approx(spec.alpha)
        if fnet is not None:
            assert res.history[-1]["hypergrad_norm"] > 0 and fnet.in_features == (36 if spec.features == "both" else 18)
    with pytest.raises(ValueError, match="needs val_loader"):
        train_arm(ArmSpec("tgeo", features="both"), nn.Linear(5, 3), train, TrainConfig(),
                  teacher_logits=teacher[:45])
    with pytest.raises(ValueError, match="unknown rule 'meta'"):
        ArmSpec("meta")
    with pytest.raises(ValueError, match="unknown feature set None"):
        ArmSpec("tgeo")
    with pytest.raises(ValueError, match="needs a fixed alpha"):
        ArmSpec("vanilla")
