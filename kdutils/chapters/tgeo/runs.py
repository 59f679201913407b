"""The TGeo-KD chapter's own run function: train one arm of a RunConfig with the loss its `ArmSpec` names,
evaluate it and write its record, plus the motivation experiment (Steps 2-6) and the evidence a TGeo record
carries about its learned alpha_i.

Why not `kdutils.training.runner.run`: it trains a RunConfig with its fixed `alpha` (vanilla KD), so a sample-wise arm
handed to it would silently train the wrong loss. `run_arm(cfg, spec)` dispatches on the spec instead
(`kdutils.chapters.tgeo.arms.train_arm`), and shares everything else with the runner: the data splits
(`runner.prepare_data`), the teacher (`runner.load_model`, trained by `runner.run` when missing), its cached
logits (`runner.teacher_logits_for`), the evaluation, chance check, checkpoint and record
(`runner.record_run`: test accuracy/NLL/ECE, agreement and KL with the teacher, val_* metrics for
selection, provenance, wall time, status ok/diverged/chance). A finished record is returned as is (resume);
in load-only mode (`runner.load_only()`) a missing record raises `runner.missing_run_error`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping

import torch

from kdutils.chapters.tgeo.arms import ArmSpec, initial_fusion_net, train_arm
from kdutils.chapters.tgeo.baselines import VanillaRule
from kdutils.chapters.tgeo.crossfit import crossfit_logits, is_part
from kdutils.chapters.tgeo.heldout import load_pool_teacher
from kdutils.chapters.tgeo.spec import arm_spec_of, check_record_spec, requested_spec, spec_of, student_kwargs
from kdutils.chapters.tgeo.geometry import teacher_class_means
from kdutils.chapters.tgeo.motivation import MotivationGroups, group_accuracy, motivation_groups
from kdutils.chapters.tgeo.training import SATURATED, fit_samplewise, predict_alphas
from kdutils.config import RunConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.metrics import predict_logits
from kdutils.store.io import DamagedFileError, load_tensors
from kdutils.store.recovery import collecting, rebuilt
from kdutils.store.store import ResultStore
from kdutils.training import runner
from kdutils.training.train import freeze
from kdutils.verdicts.stats import rank_correlation

__all__ = ["HIST_BINS", "SATURATED", "alpha_by_group", "alpha_evidence", "build_student", "heldout_alpha_evidence",
           "rank_corr", "run_arm", "run_motivation"]

#: Bins of the alpha_i histograms stored per group (on [0, 1]).
HIST_BINS = 20
#: How many (ST, alpha, teacher right) points of the training set a TGeo record keeps for a scatter plot.
SCATTER_POINTS = 400


def _check(cfg: RunConfig) -> None:
    if cfg.teacher is None:
        raise ValueError(f"run_arm needs a config with a teacher (role {cfg.role!r} has none)")
    if cfg.train.augment not in ("none", ""):
        raise ValueError("the TGeo-KD arms train on un-augmented images (the teacher's logits are cached), "
                         f"got augment={cfg.train.augment!r}")
    if cfg.data.val_size < 1:
        raise ValueError("the TGeo-KD arms need a validation split held out from the training data "
                         "(f_w's outer objective and the lr selection), got val_size=0")


def _setup(cfg: RunConfig, store: ResultStore, device: torch.device, progress: bool, notes: list[str]):
    """(splits, teacher module, teacher logits on the training split, on the validation split). A config whose
    spec asks for cross-fitted logits gets the out-of-fold ones (`crossfit`); its teacher module (the test
    metrics' reference) is the fold-0 part. One asking for held-out logits gets the pool teacher's (`heldout`)."""
    splits = runner.prepare_data(cfg.data)
    spec = spec_of(cfg)
    if spec is not None and spec.get("teacher_logits") == "crossfit":
        if not is_part(cfg.teacher):
            raise ValueError(f"cross-fitted teacher logits need a cf_teacher<part>of<k> teacher, got role "
                             f"{getattr(cfg.teacher, 'role', None)!r}")
        assert cfg.teacher is not None  # is_part(None) is False
        cf = crossfit_logits(cfg.teacher, store, device, progress)
        return splits, cf.teachers[0], cf.train.to(device), None if cf.val is None else cf.val.to(device)
    # run_arm's _check refuses a config without a teacher; the motivation's pre-training (alpha 0.5) has one too,
    # as RunConfig requires a teacher wherever alpha > 0
    assert cfg.teacher is not None, f"run_arm needs a config with a teacher (role {cfg.role!r} has none)"
    if spec is not None and spec.get("teacher_logits") == "heldout":  # trained on a pool the student never sees
        teacher = load_pool_teacher(cfg.teacher, store, device, progress)
    else:
        teacher = freeze(runner.load_model(cfg.teacher, store, device, progress, notes))
    t_train = runner.teacher_logits_for(cfg.teacher, teacher, cfg.data, "train", splits.train.x, splits, device,
                                        notes)
    t_val = None
    if splits.val is not None:
        t_val = runner.teacher_logits_for(cfg.teacher, teacher, cfg.data, "val", splits.val.x, splits, device, notes)
    return splits, teacher, t_train, t_val


def build_student(cfg: RunConfig, splits) -> torch.nn.Module:
    """The student of `cfg` (its model_kwargs without the arm spec, see `spec.student_kwargs`)."""
    from kdutils.models import build_model

    return build_model(cfg.model, splits.in_shape, splits.num_classes, **student_kwargs(cfg))


def _loader(cfg: RunConfig, x, y, splits, device, seed: int) -> DeviceLoader:
    return DeviceLoader(x, y, cfg.train.batch_size, shuffle=True, mean=splits.mean, std=splits.std, device=device,
                        seed=seed)


def run_arm(cfg: RunConfig, spec: ArmSpec | None = None, store: ResultStore | None = None, *,
            fusion_lr: float = 1e-3, rw_lr: float = 1e-3, device: torch.device | None = None, progress: bool = True,
            force: bool = False, notes: list[str] | None = None) -> dict[str, Any]:
    """Train `cfg` as arm `spec` (unless its record exists), evaluate it and record it; returns the record.

    A config with its spec in the key (`spec.spec_of`, the cross-fitted recipe) takes spec, fusion_lr and
    rw_lr from there (`spec` must then be None or agree). A found record must say it trained the requested
    spec (`spec.check_record_spec`), else this raises instead of returning another arm's numbers.
    TGeo arms (spec.rule == "tgeo") train f_w on the validation split's CE and their record adds "tgeo":
    the learned alpha_i of every training (and validation) sample summarised by group (`alpha_evidence`)."""
    store = store or ResultStore()
    keyed = spec_of(cfg)
    if keyed is not None:
        if spec is not None and arm_spec_of(keyed) != spec:
            raise ValueError(f"spec {spec} disagrees with the spec in the config's key {keyed}")
        spec = arm_spec_of(keyed)
        fusion_lr = keyed.get("fusion_lr") or fusion_lr
        rw_lr = keyed.get("rw_lr") or rw_lr
    if spec is None:
        raise ValueError(f"run_arm needs an ArmSpec for a config without one in its key (role {cfg.role!r})")
    requested = requested_spec(cfg, spec, fusion_lr, rw_lr)
    if not force and (record := store.get(cfg)) is not None:
        check_record_spec(record, requested)
        return record
    if runner.load_only() and not force:
        raise runner.missing_run_error(cfg, store)
    _check(cfg)
    with runner.sole_writer(cfg, store, force) as done:  # another process may have trained it meanwhile
        if done is not None:
            check_record_spec(done, requested)
            return done
        notes = list(notes or [])
        with collecting(notes):  # a cache rebuilt on the way is noted in the record
            return _train_arm(cfg, spec, keyed, store, fusion_lr, rw_lr, device or runner.default_device(), progress,
                              notes)


def _train_arm(cfg: RunConfig, spec: ArmSpec, keyed: dict[str, Any] | None, store: ResultStore, fusion_lr: float,
               rw_lr: float, device: torch.device, progress: bool, notes: list[str]) -> dict[str, Any]:
    """`run_arm`'s work, holding the run's lock."""
    splits, teacher, t_train, t_val = _setup(cfg, store, device, progress, notes)
    runner.seed_everything(cfg.seed)
    model = build_student(cfg, splits)
    loader = _loader(cfg, splits.train.x, splits.train.y, splits, device, cfg.seed)
    val_loader = None
    if spec.rule == "tgeo":
        val_loader = _loader(cfg, splits.val.x, splits.val.y, splits, device, cfg.seed + 10_000)
    started = time.perf_counter()
    hook = None
    if spec.rule == "tgeo" and keyed is not None:  # new records: alpha by group at every epoch
        features = spec.features
        assert features is not None  # ArmSpec refuses a "tgeo" rule without a feature set (check_feature_set)
        means = teacher_class_means(t_train, loader.y) if features != "intra" else None
        hook = lambda e, s, f: {"alpha_groups": _epoch_groups(s, f, loader, t_train, features, means)}  # noqa: E731
    result, fnet = train_arm(spec, model, loader, cfg.train, teacher_logits=t_train, val_loader=val_loader,
                             tau=cfg.tau, fusion_lr=fusion_lr, rw_lr=rw_lr, device=device, progress=progress,
                             seed=cfg.seed, epoch_hook=hook)
    extra: dict[str, Any] = {"arm": keyed if keyed is not None else
                             {"rule": spec.rule, "alpha": spec.alpha, "features": spec.features,
                              "fusion_lr": fusion_lr if spec.rule == "tgeo" else None,
                              "rw_lr": rw_lr if spec.rule == "rw" else None}}
    if fnet is not None and result.status == "ok":
        assert spec.features is not None  # train_arm returns an f_w for "tgeo" arms only, whose ArmSpec has features
        fnet0 = initial_fusion_net(int(t_train.shape[1]), spec.features, cfg.seed, spec.fw_input)
        extra["tgeo"] = alpha_evidence(model, fnet, fnet0, loader, t_train, spec.features)
        if t_val is not None:
            held = _loader(cfg, splits.val.x, splits.val.y, splits, device, cfg.seed)
            extra["tgeo"]["heldout"] = heldout_alpha_evidence(model, fnet, held, t_val, spec.features,
                                                              class_means_from=(t_train, loader.y))
    return runner.record_run(cfg, model, teacher, splits, result, store, device, started, notes=notes, **extra)


# ------------------------------------------------------------------------------------------ alpha evidence
def rank_corr(a: torch.Tensor, b: torch.Tensor, method: str = "spearman") -> float:
    """Rank correlation of two 1-d tensors from scipy (`kdutils.verdicts.stats.rank_correlation`: average ranks for
    Spearman, tau-b for Kendall): the learned alphas saturate near 1, so ties are common and must be handled."""
    return rank_correlation(a.double().cpu().tolist(), b.double().cpu().tolist(), method).value


def alpha_by_group(values: torch.Tensor, groups: MotivationGroups, bins: int = HIST_BINS) -> dict[str, dict]:
    """Per group (g1..g5 teacher right, g'1..g'5 teacher wrong, ascending ST): n, mean, std, quartiles,
    mean ST, and a histogram of the values on [0, 1] in `bins` bins (counts)."""
    out = {}
    v_all = values.detach().double().cpu()
    dist = groups.distance.detach().double().cpu()
    for name, idx in groups.named().items():
        idx = idx.cpu()
        v = v_all[idx]
        q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=v.dtype)).tolist() if v.numel() else [math.nan] * 3
        out[name] = {"n": int(v.numel()), "mean": float(v.mean()) if v.numel() else math.nan,
                     "std": float(v.std()) if v.numel() > 1 else 0.0, "q25": q[0], "median": q[1], "q75": q[2],
                     "st_mean": float(dist[idx].mean()) if v.numel() else math.nan,
                     "share_above_0.99": float((v > SATURATED).double().mean()) if v.numel() else math.nan,
                     "hist": [int(c) for c in torch.histc(v.float(), bins=bins, min=0.0, max=1.0).tolist()]}
    return out


def _param_change(fnet, fnet0) -> dict[str, float]:
    w = torch.cat([p.detach().flatten().cpu() for p in fnet.parameters()])
    w0 = torch.cat([p.detach().flatten().cpu() for p in fnet0.parameters()])
    return {"fw_change_norm": float((w - w0).norm()), "fw_init_norm": float(w0.norm()),
            "fw_relative_change": float((w - w0).norm() / w0.norm().clamp_min(1e-12)),
            "fw_max_abs_change": float((w - w0).abs().max())}


def _alphas_and_groups(student, fnet, loader: DeviceLoader, teacher_logits: torch.Tensor, features: str,
                       class_means: torch.Tensor | None):
    n = loader.num_samples
    x = loader.prepare(torch.arange(n, device=loader.device), augment=False)
    y = loader.y
    t = teacher_logits.to(loader.device)
    alphas = predict_alphas(student, fnet, x, y, t, class_means, features).double().cpu()
    was = student.training
    student.eval()
    try:
        s_logits = torch.cat([student(x[i:i + 1024]) for i in range(0, n, 1024)]).float()
    finally:
        student.train(was)
    groups = motivation_groups(s_logits.cpu(), t.cpu(), y.cpu())
    right = (t.argmax(1) == y).cpu()
    return alphas, groups, right


@torch.no_grad()
def _epoch_groups(student, fnet, loader: DeviceLoader, teacher_logits: torch.Tensor, features: str,
                  class_means: torch.Tensor | None) -> dict[str, dict[str, float]]:
    """Per motivation group of the current student: mean alpha_i and the share above SATURATED (for the
    alpha-over-epochs figure); {} when a part has fewer samples than groups."""
    try:
        alphas, groups, _ = _alphas_and_groups(student, fnet, loader, teacher_logits, features, class_means)
    except ValueError:
        return {}
    out = {}
    for name, idx in groups.named().items():
        v = alphas[idx.cpu()]
        out[name] = {"mean": round(float(v.mean()), 5), "share_above_0.99": round(float((v > SATURATED).double().mean()), 5)}
    return out


def _premise_stats(alphas: torch.Tensor, groups: MotivationGroups, right: torch.Tensor) -> dict[str, Any]:
    dist = groups.distance.cpu()
    return {"n": int(alphas.numel()), "n_teacher_wrong": int((~right).sum()),
            "alpha_mean": float(alphas.mean()),
            "alpha_share_above_0.99": float((alphas > SATURATED).double().mean()),
            "alpha_mean_right": float(alphas[right].mean()) if right.any() else math.nan,
            "alpha_mean_wrong": float(alphas[~right].mean()) if (~right).any() else math.nan,
            "wrong_minus_right": (float(alphas[~right].mean() - alphas[right].mean())
                                  if right.any() and (~right).any() else math.nan),
            "spearman_right": rank_corr(alphas[right], dist[right]),
            "spearman_wrong": rank_corr(alphas[~right], dist[~right]),
            "kendall_right": rank_corr(alphas[right], dist[right], "kendall"),
            "groups": alpha_by_group(alphas, groups)}


@torch.no_grad()
def heldout_alpha_evidence(student, fnet, loader: DeviceLoader, teacher_logits: torch.Tensor, features: str,
                           class_means_from: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """The premise statistics of `alpha_evidence` on samples f_w's student never trained on (the validation
    split), with T-bar from the training split (`class_means_from` = its teacher logits and labels). A split
    too small for five groups in each part gives {"error": why}."""
    class_means = None
    if features != "intra" and class_means_from is not None:
        t, y = class_means_from
        class_means = teacher_class_means(t.to(loader.device), y.to(loader.device))
    try:
        return _premise_stats(*_alphas_and_groups(student, fnet, loader, teacher_logits, features, class_means))
    except ValueError as err:
        return {"error": str(err)}


@torch.no_grad()
def alpha_evidence(student, fnet, fnet0, loader: DeviceLoader, teacher_logits: torch.Tensor, features: str,
                   seed: int = 0) -> dict[str, Any]:
    """What a TGeo record says about f_w: the learned alpha_i of every training sample (final student and f_w)
    summarised by motivation group (teacher right/wrong x ST quintile of the final student), their spread, the
    claim-3 statistics, how far f_w moved from its initialisation, and a small scatter sample."""
    n = loader.num_samples
    class_means = teacher_class_means(teacher_logits.to(loader.device), loader.y) if features != "intra" else None
    alphas, groups, right = _alphas_and_groups(student, fnet, loader, teacher_logits, features, class_means)
    dist = groups.distance.cpu()
    q = torch.quantile(alphas, torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=alphas.dtype)).tolist()
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(n, generator=gen)[:SCATTER_POINTS]
    # keep every teacher-wrong sample's share visible: add up to 100 of them if the random pick has few
    wrong_idx = torch.nonzero(~right).flatten()
    if wrong_idx.numel():
        pick = torch.unique(torch.cat([pick, wrong_idx[torch.randperm(wrong_idx.numel(), generator=gen)[:100]]]))
    return {
        **_premise_stats(alphas, groups, right),
        "alpha_std": float(alphas.std()), "alpha_min": float(alphas.min()), "alpha_max": float(alphas.max()),
        "alpha_q05": q[0], "alpha_q25": q[1], "alpha_median": q[2], "alpha_q75": q[3], "alpha_q95": q[4],
        **_param_change(fnet, fnet0),
        "scatter": {"st": [round(float(v), 4) for v in dist[pick]],
                    "alpha": [round(float(v), 4) for v in alphas[pick]],
                    "teacher_right": [bool(v) for v in right[pick]]},
    }


# ------------------------------------------------------------------------------------------- motivation
def _group_sizes(groups: MotivationGroups) -> dict[str, dict[str, float]]:
    d = groups.distance.double().cpu()
    return {name: {"n": int(idx.numel()), "st_mean": float(d[idx.cpu()].mean())}
            for name, idx in groups.named().items()}


def _pre_state(pre_cfg: RunConfig, store: ResultStore, device, progress: bool) -> Mapping[str, torch.Tensor]:
    """The pre-trained student's weights; a missing or damaged checkpoint is retrained (a damaged one is
    reported and noted in its record and in every record being produced)."""
    ckpt = store.checkpoint_path(pre_cfg)
    own: list[str] = []
    if ckpt.exists():
        try:
            return load_tensors(ckpt)
        except DamagedFileError as err:
            rebuilt(ckpt, err, f"retraining {pre_cfg.experiment}/{pre_cfg.role} ({pre_cfg.key()}) to rebuild it",
                    own)
    run_arm(pre_cfg, _pre_spec(pre_cfg), store, device=device, progress=progress, force=True, notes=own)
    return load_tensors(ckpt)


def _pre_spec(pre_cfg: RunConfig) -> ArmSpec | None:
    """The pre-training's spec: in its key (cross-fitted recipe), else vanilla at its alpha."""
    return None if spec_of(pre_cfg) is not None else ArmSpec("vanilla", alpha=pre_cfg.alpha)


def run_motivation(pre_cfg: RunConfig, continued: Mapping[float, RunConfig], store: ResultStore | None = None, *,
                   device: torch.device | None = None, progress: bool = True, force: bool = False
                   ) -> list[dict[str, Any]]:
    """Steps 2-6 of the poster for one seed: `pre_cfg` (alpha 0.5) is trained first; its student defines the
    groups (teacher right/wrong on each training and validation sample, five equal ST groups each); a copy
    of it is trained on for each alpha of `continued` and its accuracy per group recorded (the heatmap
    cells: "motivation.train" on the training samples, the poster's protocol, and "motivation.val" on the
    held-out validation samples). Returns the pre-training record then one record per alpha."""
    store = store or ResultStore()
    records = {a: store.get(c) for a, c in continued.items()}
    if not force and all(r is not None for r in records.values()):
        pre = store.get(pre_cfg)
        return ([pre] if pre is not None else []) + [r for r in records.values() if r is not None]  # all of them
    if runner.load_only() and not force:
        missing = next(c for a, c in continued.items() if records[a] is None)
        raise runner.missing_run_error(missing, store)
    device = device or runner.default_device()
    pre_rec = run_arm(pre_cfg, _pre_spec(pre_cfg), store, device=device, progress=progress)
    notes: list[str] = []
    with collecting(notes):  # a pre-trained student or cache rebuilt here is noted in every record below
        state = _pre_state(pre_cfg, store, device, progress)
        splits, teacher, t_train, t_val = _setup(pre_cfg, store, device, progress, notes)
    pre_model = build_student(pre_cfg, splits)
    pre_model.load_state_dict(state)
    pre_model.to(device)
    kw = dict(device=device, mean=splits.mean, std=splits.std)
    g_train = motivation_groups(predict_logits(pre_model, splits.train.x, **kw), t_train.cpu(), splits.train.y.cpu())
    g_val = motivation_groups(predict_logits(pre_model, splits.val.x, **kw), t_val.cpu(), splits.val.y.cpu())
    out = [pre_rec]
    for alpha, cfg in continued.items():
        if not force and (rec := store.get(cfg)) is not None:
            out.append(rec)
            continue
        with runner.sole_writer(cfg, store, force) as done:  # another process may have trained it meanwhile
            if done is not None:
                out.append(done)
                continue
            runner.seed_everything(cfg.seed)
            model = build_student(cfg, splits)
            model.load_state_dict(state)
            loader = _loader(cfg, splits.train.x, splits.train.y, splits, device, cfg.seed + 20_000)
            started = time.perf_counter()
            result = fit_samplewise(model, loader, cfg.train, teacher_logits=t_train, rule=VanillaRule(float(alpha)),
                                    tau=cfg.tau, device=device, progress=progress, desc=f"motivation a={alpha:g}")
            extra: dict[str, Any] = {"arm": {**(spec_of(cfg) or {"rule": "vanilla", "features": None}),
                                             "alpha": float(alpha), "continued_from": pre_cfg.key()}}
            if result.status == "ok":
                p_train = predict_logits(model, splits.train.x, **kw)
                p_val = predict_logits(model, splits.val.x, **kw)
                extra["motivation"] = {
                    "alpha": float(alpha), "pre_key": pre_cfg.key(),
                    "train": group_accuracy({float(alpha): p_train}, splits.train.y.cpu(),
                                            g_train)[float(alpha)].to_dict(),
                    "val": group_accuracy({float(alpha): p_val}, splits.val.y.cpu(), g_val)[float(alpha)].to_dict(),
                    "train_groups": _group_sizes(g_train), "val_groups": _group_sizes(g_val)}
            out.append(runner.record_run(cfg, model, teacher, splits, result, store, device, started, notes=notes,
                                         **extra))
    return out
