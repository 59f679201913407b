"""The does-KD-work experiment skeleton: recipes and arms are valid, pure KD at tau 4, every claim has its
arms, CIFAR-100 is one parameter away, recipe v1 keeps its recorded values (and keys) while v2 changes what
issue 23 asks, and specs written before the late fields existed keep their keys."""
from __future__ import annotations

from dataclasses import replace

import pytest

from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.chapters.does_kd_work.policies import parse_policy
from kdutils.config import config_hash
from kdutils.models import model_names


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_arms_are_valid_and_unique(profile):
    specs = dkw.grid(profile)
    assert len({s.key() for s in specs}) == len(specs)
    for s in specs:
        assert s.student_model in model_names() and all(t.model in model_names() for t in s.teachers)
        assert s.alpha == 1.0  # pure distillation (the authors' alpha = 0)
        assert s.tau == (1.0 if s.policy == "mixup_t1" else 4.0)
        assert s.augment == "none" or parse_policy(s.augment) is not None
        r = dkw.recipe(profile)
        if s.claim == 5:  # the same number of steps at every distillation-set size
            assert s.epochs == max(1, round(r.student_epochs / s.distill_fraction))
        else:
            assert s.epochs == r.student_epochs
        assert s.lr_candidates and s.lr == r.student_lrs[0]
    assert {s.claim for s in specs} == set(dkw.CLAIMS) - {7}  # claim 7 is an MNIST arm
    assert {s.claim for s in dkw.grid(profile, "mnist")} == set(dkw.CLAIMS)


def test_claim_arms_on_cpu():
    r = dkw.recipe("cpu")
    assert r.ensemble_sizes == (1, 3, 5) and len(r.seeds) >= 3
    sizes = {s.ensemble_size for s in dkw.claim_specs(2, "cpu")}
    assert sizes == {1, 3, 5}
    five = next(s for s in dkw.claim_specs(2, "cpu") if s.ensemble_size == 5)
    assert [t.seed for t in five.teachers] == [0, 1, 2, 3, 4]  # members are teacher seeds 0..4
    policies = {s.policy: s for s in dkw.claim_specs(3, "cpu")}
    assert set(policies) == {"none", "crop_flip", "mixup_t1", "mixup_t4", "noise", "ood"}
    assert policies["ood"].ood_dataset == "mnist" and policies["ood"].n_ood > 0
    assert policies["mixup_t4"].augment == "crop2+flip+mixup1"
    recycling = dkw.claim_specs(4, "cpu")
    assert {s.distill_data for s in recycling} == {"recycled", "new"}
    assert all(t.data.k_folds == 2 and t.data.fold == 1 for s in recycling for t in s.teachers)
    # r = 1 is the random init: the same config as claim 3's "none" student
    assert {s.r for s in dkw.claim_specs(6, "cpu")} == {0.1, 0.25, None}
    none3 = {s.key() for s in dkw.claim_specs(3, "cpu") if s.policy == "none"}
    assert {s.key() for s in dkw.claim_specs(6, "cpu") if s.r is None} <= none3
    assert {s.distill_fraction for s in dkw.claim_specs(5, "cpu")} == {0.25, 1.0}


def test_cifar100_is_one_parameter_away_and_mnist_uses_lenet():
    c = dkw.recipe("full", "cifar100")
    assert c.crop == 4 and "ood" not in c.policies  # no SVHN here: the OOD arm is skipped
    assert {s.augment for s in dkw.claim_specs(3, "full", "cifar100") if s.policy == "crop_flip"} == {"crop4+flip"}
    assert dkw.recipe("full").teacher_model == "preresnet56"
    assert dkw.recipe("cpu", "mnist").teacher_model == "lenet5"
    assert dkw.claim_specs(3, "cpu", "mnist")[0].teachers[0].data.dataset == "mnist"


def test_v1_keeps_its_recorded_values_and_v2_changes_what_issue_23_asks():
    v1, v2 = dkw.recipe("cpu", version="v1"), dkw.recipe("cpu", version="v2")
    v3 = dkw.recipe("cpu")
    assert dkw.latest("cpu") == "v3" and v3.max_extensions == 2 and v2.max_extensions == 0
    assert replace(v3, version="v2", max_extensions=0, notes="") == replace(v2, notes="")  # nothing else differs
    # v3 runs are v2's runs: the version enters no run's key
    assert [s.key() for s in dkw.grid("cpu", teacher_lr=0.2, version="v3")] == [
        s.key() for s in dkw.grid("cpu", teacher_lr=0.2, version="v2")]
    assert (v1.teacher_epochs, v1.student_epochs, v1.seeds, v1.n_test) == (10, 15, (0, 1, 2), 2000)
    assert v2.teacher_epochs >= 100 and v2.n_test is None and len(v2.seeds_3_5) == 5 and v2.lr_per_policy
    assert {s.seed for s in dkw.claim_specs(3, "cpu")} == set(range(5))
    assert {s.seed for s in dkw.claim_specs(1, "cpu")} == {0, 1, 2}
    # v1's augmentation strings are the recorded ones; v2's MNIST teacher and students never flip
    assert dkw.teacher_config("cpu", version="v1").train.augment == "crop2+flip"
    assert dkw.teacher_config("cpu", dataset="mnist").train.augment == "crop2"
    assert all("flip" not in s.augment for s in dkw.grid("cpu", "mnist"))
    assert {s.policy: s.augment for s in dkw.claim_specs(3, "cpu", version="v1")}["mixup_t4"] == "crop2+flip+mixup1"
    with pytest.raises(ValueError, match="unknown recipe version 'v4'"):
        dkw.recipe("cpu", version="v4")


def test_v1_keys_are_the_recorded_keys():
    """A v1 spec built today has the key of the record written before the late fields and versions existed."""
    spec = dkw.claim_specs(1, "cpu", teacher_lr=0.2, lrs={"augmented": 0.05}, version="v1")[0]
    old = {k: v for k, v in spec.to_dict().items() if k not in ("claim", "lr_candidates", *dkw.LATE_FIELDS)}
    assert spec.key() == config_hash(old)
    later = type(spec)(**{**spec.to_dict(), "teachers": spec.teachers, "n_unlabelled": 10})
    assert later.key() != spec.key()


def test_unlabelled_arm_and_baselines():
    seven = dkw.claim_specs(7, "cpu", "mnist")
    assert {s.n_unlabelled for s in seven} == {0, *dkw.recipe("cpu", "mnist").unlabelled}
    zero = {s.key() for s in seven if s.n_unlabelled == 0}
    assert zero == {s.key() for s in dkw.claim_specs(1, "cpu", "mnist")}  # u = 0 is claim 1's MNIST student
    assert dkw.claim_specs(7, "cpu") == []  # no arm on Fashion-MNIST at this budget
    base = dkw.baseline_specs("cpu", teacher_lr=0.1, lrs={"crop_flip": 0.05, "none": 0.025})
    kinds = [(b.evaluate, b.r, b.plain_member) for b in base]
    assert ("init", 0.0, None) in kinds and [m for e, _, m in kinds if e == "plain"] == [1, 2, 3]
    assert {r for e, r, _ in kinds if e == "init"} == {0.0, 0.1, 0.25}
    assert dkw.baseline_specs("cpu", version="v1") == []
    with pytest.raises(ValueError, match="plain_member >= 1"):
        type(base[0])(**{**base[0].to_dict(), "teachers": base[0].teachers, "plain_member": 0})


def test_errors():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        dkw.recipe("cpu", "cifar10")
    with pytest.raises(ValueError, match="unknown claim 9"):
        dkw.claim_specs(9, "cpu")
    with pytest.raises(ValueError, match="half must be"):
        dkw.teacher_config("cpu", half=2)
    spec = dkw.claim_specs(1, "smoke")[0]
    with pytest.raises(ValueError, match="r = 0 is the teacher itself"):
        type(spec)(**{**spec.to_dict(), "teachers": spec.teachers, "r": 0.0})
    with pytest.raises(ValueError, match="unknown policy"):
        type(spec)(**{**spec.to_dict(), "teachers": spec.teachers, "policy": "gan"})


def test_lrs_teachers_and_plain_models():
    specs = dkw.claim_specs(1, "cpu", teacher_lr=0.2, lrs={"augmented": 0.1, "none": 0.05}, version="v1")
    assert all(s.lr == 0.1 and s.teachers[0].train.lr == 0.2 for s in specs)
    none = [s for s in dkw.claim_specs(3, "cpu", teacher_lr=0.2, lrs={"augmented": 0.1, "none": 0.05}, version="v1")
            if s.policy == "none"]
    assert none and all(s.lr == 0.05 for s in none)
    # v2: one rate per policy
    lrs = {p: 0.01 * (i + 1) for i, p in enumerate(dkw.recipe("cpu").policies)}
    assert {(s.policy, s.lr) for s in dkw.claim_specs(3, "cpu", teacher_lr=0.1, lrs=lrs)} == set(lrs.items())
    # the plain models are teacher-recipe members 1.. (never member 0, the single teacher)
    assert [c.seed for c in dkw.plain_configs("cpu", lr=0.2)] == [1, 2, 3]
    assert dkw.teacher_config("cpu", 1, lr=0.2) == dkw.plain_configs("cpu", lr=0.2)[0]
    # selection candidates: seed 0 at every rate; the chosen one is the seed-0 final (same key)
    sel = dkw.selection_specs("crop_flip", "cpu", teacher_lr=0.2)
    assert [s.lr for s in sel] == list(dkw.recipe("cpu").student_lrs)
    final0 = dkw.claim_specs(1, "cpu", teacher_lr=0.2, lrs={"crop_flip": sel[1].lr})[0]
    assert final0.key() == sel[1].key()
    # the key ignores the claim number (claims share arms)
    assert dkw.claim_specs(2, "cpu")[0].key() == dkw.claim_specs(1, "cpu")[0].key()
    with pytest.raises(ValueError, match="unknown lr family 'augmentedx'"):
        dkw.selection_specs("augmentedx", "cpu")


def test_key_ignores_the_claim_and_the_lr_grid():
    spec = dkw.claim_specs(1, "cpu", teacher_lr=0.2, lrs={"augmented": 0.05})[0]
    wider = type(spec)(**{**spec.to_dict(), "teachers": spec.teachers, "lr_candidates": (0.01, 0.05, 0.2)})
    assert wider.key() == spec.key()
    other_lr = type(spec)(**{**spec.to_dict(), "teachers": spec.teachers, "lr": 0.1})
    assert other_lr.key() != spec.key()
