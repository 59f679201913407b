"""Odagiu et al., recipe v2: the learning-rate selection with edge extension, the rank-order check, the final
runs of every fold, and the resumable run of one shard (two single-thread processes train disjoint pairs).

Order within a pair (each step skips what is recorded, so a killed process restarts with the same command):
1. stage-1 selection (teachers, students alone and augmented), stage 2 (every KD arm, from the fold-0-seed
   teachers at their selected rates); an arm whose choice sits at a grid edge gets one more rate beyond it, up
   to `MAX_EXTENSIONS` times;
2. the final runs fold by fold (models trained alone first: they are the teachers), each with its extra
   metrics (agreement with the teacher it never saw, with teacher', and on the validation fold);
3. on the rank-check pair, the rank-check arm's grid at full length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from kdutils.chapters.invariance import recipes as r1
from kdutils.chapters.invariance import recipe_v2 as rv
from kdutils.chapters.invariance.recipes import PROFILE_TAUS, arm_key
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import Selection, edge_of, extend_at_edges, selection_configs

SELECT_TAU = 4.0  # the non-teacher KD arms are selected at one tau, as in v1
SELECT_VAL_SIZE = {"smoke": 128, "cpu": 10_000, "full": 10_000}
# Shards: pairs are never split (a pair's KD runs need its own teachers and selections). Sized by `cost_v2`.
SHARDS = {2: (("dgcnn_deepsets",), ("resnet_mlp", "deepsets_mlp")), 1: (r1.RUN_ORDER,)}


def _epochs(epochs: int, profile: str) -> int:
    return max(1, int(round(epochs * rv.SELECT_FRACTION[profile])))


def stage_bases(profile: str, pair: str, stage: int, lrs: dict[str, float] | None = None
                ) -> dict[str, tuple[RunConfig, int]]:
    """{arm: (base config, selection epochs)} of selection stage 1 or 2 (stage 2 needs stage 1's `lrs`)."""
    rec = rv.recipe_v2(pair, profile)
    out: dict[str, tuple[RunConfig, int]] = {}
    if stage == 1:
        out["teacher"] = (rv.teacher_v2(profile, pair, None), _epochs(rec.base.teacher_train.epochs, profile))
        out["teacher_prime"] = (rv.teacher_v2(profile, pair, None, True),
                                _epochs(rec.base.teacher_prime_train.epochs, profile))
        for s in rec.base.default_students:
            for aug in (False, True):
                out[arm_key("student_aug" if aug else "student", s)] = (
                    rv.student_v2(profile, pair, s, None, aug), _epochs(rec.base.student_train.epochs, profile))
        return out
    if stage != 2 or lrs is None:
        raise ValueError(f"selection stage must be 1, or 2 with the stage-1 lrs; got stage {stage!r}")
    ep = _epochs(rec.base.distill_train.epochs, profile)
    for s in rec.base.default_students:
        for tau in PROFILE_TAUS[profile]:
            cfg = rv.kd_v2(profile, pair, s, tau, "distilled", None)
            out[arm_key("distilled", s, tau)] = (cfg.with_(teacher=rv.teacher_v2(profile, pair, 0, False, lrs)), ep)
        # the KD candidates learn from the fold-0 final teachers (as in v1): no extra teacher is trained
        teachers = {"distilled_prime": rv.teacher_v2(profile, pair, 0, True, lrs),
                    "self": rv.student_v2(profile, pair, s, 0, False, lrs),
                    "self_aug": rv.student_v2(profile, pair, s, 0, True, lrs)}
        for arm, teacher in teachers.items():
            out[arm_key(arm, s)] = (rv.kd_v2(profile, pair, s, SELECT_TAU, arm, None).with_(teacher=teacher), ep)
    return out


def candidates(profile: str, arm: str, base: RunConfig, epochs: int, grid: Iterable[float]) -> list[RunConfig]:
    return selection_configs(base, arm, tuple(grid), epochs, SELECT_VAL_SIZE[profile], seed=rv.SEED_OFFSET)


@dataclass(frozen=True)
class ArmSelection:
    """An arm's selection under v2: the chosen rate, the grid it was chosen from (after any extension), and
    whether the choice still sits at an edge of that grid (`edge`: "top", "bottom" or "")."""

    selection: Selection
    grid: tuple[float, ...]
    extensions: int
    edge: str

    @property
    def lr(self) -> float:
        return self.selection.lr


def select_arm(profile: str, arm: str, base: RunConfig, epochs: int, store: ResultStore, train: bool,
               progress: bool = True) -> ArmSelection | None:
    """One arm's selection with edge extension (`tuning.extend_at_edges`: while the choice is at an edge and
    fewer than MAX_EXTENSIONS were added, the next rate beyond that edge joins the grid). Deterministic from the
    records, so the book (train=False) recovers the same choice; None while a needed candidate is missing."""
    from kdutils.chapters.invariance.plan import _selection
    from kdutils.training.group_runner import run_grouped

    def chosen_on(grid: tuple[float, ...]) -> float | None:
        cfgs = candidates(profile, arm, base, epochs, grid)
        if train:
            run_grouped([c for c in cfgs if store.get(c) is None], store, progress=progress)
        return None if any(store.get(c) is None for c in cfgs) else _selection(arm, cfgs, store).lr

    base_grid = rv.LR_GRID_V2[profile]
    grid, lr = extend_at_edges(base_grid, chosen_on, rv.MAX_EXTENSIONS, rv.EXTEND_FACTOR)
    if lr is None:
        return None
    sel = _selection(arm, candidates(profile, arm, base, epochs, grid), store)
    return ArmSelection(sel, grid, len(grid) - len(base_grid), edge_of(sel.lr, grid))


def select_v2(profile: str, pair: str, store: ResultStore | None = None, train: bool = False,
              progress: bool = True) -> dict[str, ArmSelection] | None:
    """Every arm's v2 selection of a pair; `train` trains missing candidates (each stage's base grids together
    first). None while anything is missing and `train` is False."""
    from kdutils.training.group_runner import run_grouped

    store = store or ResultStore()
    out: dict[str, ArmSelection] = {}
    lrs: dict[str, float] | None = None
    for stage in (1, 2):
        bases = stage_bases(profile, pair, stage, lrs)
        if train:  # the base grids of the whole stage train together (grouped), extensions arm by arm after
            run_grouped([c for arm, (b, ep) in bases.items()
                         for c in candidates(profile, arm, b, ep, rv.LR_GRID_V2[profile])], store, progress=progress)
        for arm, (b, ep) in bases.items():
            sel = select_arm(profile, arm, b, ep, store, train, progress)
            if sel is None:
                return None
            out[arm] = sel
        lrs = {a: s.lr for a, s in out.items()}
    return out


def final_configs(profile: str, pair: str, store: ResultStore | None = None,
                  lrs: dict[str, float] | None = None) -> list[RunConfig] | None:
    """Every v2 final run of a pair at its selected rates (None while the selection is not recorded)."""
    if lrs is None:
        sel = select_v2(profile, pair, store)
        if sel is None:
            return None
        lrs = {a: s.lr for a, s in sel.items()}
    seen: dict[str, RunConfig] = {}
    for fold in rv.FOLDS_V2[profile]:
        for c in sorted(rv.fold_configs(profile, pair, fold, lrs), key=_priority):
            seen.setdefault(c.key(), c)
    return list(seen.values())


def _priority(cfg: RunConfig) -> int:
    if cfg.teacher is None:
        return 0
    return 1 if cfg.role in ("distilled", "self") and cfg.kd_direction == "forward" else 2


def rank_check_configs(profile: str, store: ResultStore | None = None) -> tuple[list[RunConfig], list[RunConfig]] | None:
    """(selection-length candidates, full-length candidates) of the rank-check arm over the arm's final grid;
    None while its selection is not recorded."""
    pair, student, tau = rv.RANK_CHECK
    sel = select_v2(profile, pair, store)
    if sel is None:
        return None
    arm = arm_key("distilled", student, tau)
    lrs = {a: s.lr for a, s in sel.items()}
    base, ep = stage_bases(profile, pair, 2, lrs)[arm]
    full = rv.recipe_v2(pair, profile).base.distill_train.epochs
    grid = sel[arm].grid
    return candidates(profile, arm, base, ep, grid), candidates(profile, f"rankcheck-{arm}", base, full, grid)


def rank_check(profile: str, store: ResultStore | None = None) -> dict[str, Any] | None:
    """Do selection-length runs rank the rates as full-length runs do? Kendall's tau between the two rankings
    (validation accuracy), and whether both pick the same rate; None while either set is not recorded."""
    from scipy.stats import kendalltau

    store = store or ResultStore()
    got = rank_check_configs(profile, store)
    if got is None:
        return None
    short, full = ([store.get(c) for c in cs] for cs in got)
    if any(r is None for r in short + full):
        return None
    acc = lambda r: float(r.get("metrics", {}).get("val_accuracy", math.nan))  # noqa: E731
    a, b = [acc(r) for r in short], [acc(r) for r in full]
    lrs = [c.train.lr for c in got[0]]
    res = kendalltau(a, b)
    best_short, best_full = (max(range(len(x)), key=x.__getitem__) for x in (a, b))  # index of each length's best
    return {"arm": got[0][0].role, "lrs": lrs, "short": a, "full": b, "kendall_tau": float(res.statistic),
            "best_short": best_short, "best_full": best_full, "same_choice": best_short == best_full,
            "short_epochs": got[0][0].train.epochs, "full_epochs": got[1][0].train.epochs}


def rank_check_rerun_configs(profile: str, store: ResultStore | None = None) -> list[RunConfig] | None:
    """Where the rank check disagrees on the best rate: the checked arm's final runs (every fold) at the rate
    the full-length runs rank best, so the page can show whether the arm's result depends on the choice. They
    are recorded beside the final runs and enter no verdict. None while the check is not recorded or agrees."""
    rc = rank_check(profile, store)
    if rc is None or rc["same_choice"]:
        return None
    best = rc["lrs"][rc["best_full"]]
    pair, student, tau = rv.RANK_CHECK
    sel = select_v2(profile, pair, store)
    if sel is None:
        return None
    lrs = {**{a: s.lr for a, s in sel.items()}, arm_key("distilled", student, tau): best}
    return [rv.kd_v2(profile, pair, student, tau, "distilled", fold, "forward", lrs) for fold in rv.FOLDS_V2[profile]]


# ---- extra metrics (from checkpoints, without retraining) ----------------------------------------------------

def _extra_keys(cfg: RunConfig) -> list[str]:
    keys = ["im_roll_l1", "im_roll_l2", "flip_roll"] if cfg.data.dataset == "mnist" else []
    if cfg.role == "distilled":
        keys += ["agreement_tprime", "kl_tprime", "val_agreement"]
    if cfg.role == "student":
        keys += ["agreement_teacher", "kl_teacher", "val_agreement_teacher"]
    return keys


def add_extra_v2(cfg: RunConfig, record: dict[str, Any], store: ResultStore, lrs: dict[str, float]) -> dict[str, Any]:
    """A v2 record plus its agreement (and KL) with the teacher it never saw / with teacher', on the test set,
    and the agreement with its own teacher on the validation fold (what picks the high-fidelity tau)."""
    from kdutils.chapters.invariance.plan import _load_checkpoint
    from kdutils.metrics import agreement, predict_logits, predictive_kl
    from kdutils.training import runner

    keys = _extra_keys(cfg)
    if record.get("status") not in ("ok", "chance") or all(k in record.get("metrics", {}) for k in keys):
        return record
    device = runner.default_device()
    splits = runner.prepare_data(cfg.data)
    model = _load_checkpoint(cfg, store, splits, device)
    if model is None:
        return record
    pair = cfg.experiment[len(r1.EXPERIMENT_PREFIX):]
    extra: dict[str, float] = {}
    wants = ([("teacher", False, "agreement_teacher", "kl_teacher", "val_agreement_teacher")] if cfg.role == "student"
             else [("teacher_prime", True, "agreement_tprime", "kl_tprime", None),
                   ("teacher", False, None, None, "val_agreement")] if cfg.role == "distilled" else [])
    if "im_roll_l1" in keys:  # the authors' MNIST IM (a 5-px roll), as v1 records it
        from kdutils.data.symmetry import TRANSFORMATIONS
        from kdutils.metrics import flip_rate, invariance_metric

        x, gen = splits.test.x, torch.Generator().manual_seed(1234)
        p = predict_logits(model, x, device=device, mean=splits.mean, std=splits.std).softmax(1)
        p_t = predict_logits(model, TRANSFORMATIONS["roll5"].fn(x, gen), device=device, mean=splits.mean,
                             std=splits.std).softmax(1)
        extra.update(im_roll_l1=invariance_metric(p, p_t, "l1"), im_roll_l2=invariance_metric(p, p_t, "l2"),
                     flip_roll=flip_rate(p, p_t))
    for _, prime, agree_key, kl_key, val_key in wants:
        t_cfg = rv.teacher_v2(cfg.profile, pair, cfg.data.fold, prime, lrs)
        teacher = _load_checkpoint(t_cfg, store, splits, device)
        if teacher is None:
            continue
        with torch.no_grad():
            if agree_key:
                assert kl_key is not None  # `wants` names the agreement and KL keys together
                x = splits.test.x
                s = predict_logits(model, x, device=device, mean=splits.mean, std=splits.std)
                t = runner.teacher_logits_for(t_cfg, teacher, cfg.data, "test", x, splits, device)
                extra[agree_key], extra[kl_key] = agreement(s, t), predictive_kl(t, s)
            if val_key and splits.val is not None:
                x = splits.val.x
                s = predict_logits(model, x, device=device, mean=splits.mean, std=splits.std)
                t = runner.teacher_logits_for(t_cfg, teacher, cfg.data, "val", x, splits, device)
                extra[val_key] = agreement(s, t)
    if not extra:
        return record
    updated = {k: v for k, v in record.items() if k not in ("key", "config")}
    updated["metrics"] = {**record["metrics"], **extra}
    return store.put(cfg, updated)


# ---- one shard -------------------------------------------------------------------------------------------------

def shard_pairs(shard: int, n_shards: int) -> tuple[str, ...]:
    if n_shards not in SHARDS or not (isinstance(shard, int) and 0 <= shard < n_shards):
        raise ValueError(f"shard K/N must have N in {sorted(SHARDS)} and 0 <= K < N; got {shard!r}/{n_shards!r}")
    return SHARDS[n_shards][shard]


def run_shard(profile: str, shard: int = 0, n_shards: int = 1, store: ResultStore | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Select, train and evaluate every v2 run of the shard's pairs (resumable); then the rank check where the
    shard holds its pair. Returns what was done per pair."""
    from kdutils.chapters.invariance.plan import thread_limit
    from kdutils.progress import tqdm
    from kdutils.training import runner

    store = store or ResultStore()
    done: dict[str, Any] = {}
    for pair in shard_pairs(shard, n_shards):
        sel = select_v2(profile, pair, store, train=True, progress=progress)
        if sel is None:
            raise RuntimeError(f"the v2 selection of {pair!r} is incomplete after training")
        lrs = {a: s.lr for a, s in sel.items()}
        cfgs = final_configs(profile, pair, store, lrs) or []
        with thread_limit(profile):
            for cfg in tqdm(cfgs, desc=f"invariance v2 {pair}", disable=not progress):
                add_extra_v2(cfg, runner.run(cfg, store, progress=False), store, lrs)
        done[pair] = {"runs": len(cfgs), "edges": [a for a, s in sel.items() if s.edge]}
        if pair == rv.RANK_CHECK[0]:
            from kdutils.training.group_runner import run_grouped

            got = rank_check_configs(profile, store)
            if got is not None:
                run_grouped(got[1], store, progress=progress)
            done["rank_check"] = rank_check(profile, store)
            with thread_limit(profile):
                for cfg in rank_check_rerun_configs(profile, store) or []:
                    add_extra_v2(cfg, runner.run(cfg, store, progress=False), store, lrs)
    return done


__all__ = ["ArmSelection", "SHARDS", "add_extra_v2", "candidates", "describe_v2", "edge_of", "final_configs",
           "rank_check", "rank_check_configs", "rank_check_rerun_configs", "run_shard", "select_arm", "select_v2",
           "shard_pairs", "stage_bases"]


def describe_v2(profile: str, pair: str) -> str:
    """A pair's v2 recipe as the page prints it: v1's teachers, v2's student stages and transfer set, v2's rate
    grid and folds (`plan.describe` with v2's parts)."""
    from kdutils.chapters.invariance.plan import describe

    r = rv.recipe_v2(pair, profile)
    return describe(profile, pair, rec=r.base, n_transfer=r.n_transfer, lr_grid=rv.LR_GRID_V2[profile],
                    folds=rv.FOLDS_V2[profile], version=rv.VERSION)
