"""Training loops with a per-sample fusion ratio: `fit_samplewise` (the baselines: a rule gives alpha) and
`fit_tgeo` (alpha_i = f_w(Delta_i), f_w trained by the one-step unrolled hypergradient of `bilevel`).

Both follow `kdutils.training.train.fit`: device-resident batches from a `DeviceLoader`, the teacher's logits cached
for the training split and looked up by `batch.idx`, sums kept on the device and read once per epoch, a
finiteness check every step (as in `fit`), bf16 autocast on CUDA. Each epoch's record adds the statistics of
the alphas actually used (mean, std, min, max over the epoch's samples), so a run shows whether alpha_i
varied and where it went.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterator, TypedDict

import torch
from torch import nn

from kdutils.chapters.tgeo.baselines import AlphaContext, AlphaRule
from kdutils.chapters.tgeo.bilevel import bilevel_step
from kdutils.chapters.tgeo.geometry import check_feature_set, geometry_features, teacher_class_means
from kdutils.chapters.tgeo.objective import samplewise_kd_objective
from kdutils.config import TrainConfig
from kdutils.progress import tqdm
from kdutils.training.train import (FitResult, diverged_result, loss_is_healthy, make_optimizer, make_scheduler,
                                    progress_enabled)

__all__ = ["AlphaStats", "fit_samplewise", "fit_tgeo", "predict_alphas"]


#: alpha_i above this counts as saturated (the KD term alone): the share per epoch is in every history.
SATURATED = 0.99


class _TensorKwargs(TypedDict):
    """Where and in which precision `AlphaStats` keeps its sums."""

    device: torch.device
    dtype: torch.dtype


class AlphaStats:
    """Running mean/std/min/max of the alphas of one epoch and their share above SATURATED, kept on the device
    (no sync per step)."""

    def __init__(self, device: torch.device) -> None:
        z: _TensorKwargs = dict(device=device, dtype=torch.float64)
        self.n = 0
        self.sum = torch.zeros((), **z)
        self.sq = torch.zeros((), **z)
        self.lo = torch.full((), math.inf, **z)
        self.hi = torch.full((), -math.inf, **z)
        self.sat = torch.zeros((), **z)

    def add(self, alpha: torch.Tensor | float, batch_size: int) -> None:
        a = torch.as_tensor(alpha, device=self.sum.device).detach().double().expand(batch_size)
        self.n += batch_size
        self.sum += a.sum()
        self.sq += (a * a).sum()
        self.lo = torch.minimum(self.lo, a.min())
        self.hi = torch.maximum(self.hi, a.max())
        self.sat += (a > SATURATED).sum()

    def summary(self) -> dict[str, float]:
        n = max(self.n, 1)
        mean = self.sum / n
        var = (self.sq / n - mean * mean).clamp_min(0.0)
        return {"alpha_mean": mean.item(), "alpha_std": var.sqrt().item(), "alpha_min": self.lo.item(),
                "alpha_max": self.hi.item(), "alpha_share_above_0.99": (self.sat / n).item()}




def _cycle(loader) -> Iterator:
    """Endless batches: a new epoch of the (validation) loader each time it runs out."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the validation loader yields no batches")


def _check_teacher_logits(teacher_logits: torch.Tensor, loader) -> None:
    if teacher_logits.ndim != 2 or teacher_logits.shape[0] != loader.num_samples:
        raise ValueError(f"teacher_logits must be (N, C) for the loader's N={loader.num_samples} samples "
                         f"(looked up by batch.idx), got {tuple(teacher_logits.shape)}")


def fit_samplewise(student: nn.Module, loader, cfg: TrainConfig, *, teacher_logits: torch.Tensor,
                   rule: AlphaRule, tau: float = 4.0, kd_direction: str = "forward",
                   label_smoothing: float = 0.0, device: torch.device | str = "cpu", progress: bool = True,
                   desc: str = "train", check_every: int = 1, max_loss: float = 1e4) -> FitResult:
    """Train `student` on mean_i [alpha_i L_KD,i + (1 - alpha_i) L_GT,i] with alpha from `rule`.

    A rule that is an nn.Module with parameters (RW-KD) is trained alongside by Adam(rule.lr) on the same
    training loss; its alphas are then not range-checked (RW-KD without clamp leaves [0, 1] by design).
    """
    device = torch.device(device)
    _check_teacher_logits(teacher_logits, loader)
    teacher_logits = teacher_logits.to(device)
    student.to(device)
    opt = make_optimizer(student.parameters(), cfg)
    sched = make_scheduler(opt, cfg, len(loader))
    rule_params = list(rule.parameters()) if isinstance(rule, nn.Module) else []
    rule_opt = None
    if rule_params:
        assert isinstance(rule, nn.Module)  # rule_params is non-empty only for an nn.Module rule (just above)
        rule.to(device)
        rule_opt = torch.optim.Adam(rule_params, lr=float(getattr(rule, "lr", 1e-3)))
    use_amp = device.type == "cuda"
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    epochs = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    for epoch in epochs:
        student.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        stats = AlphaStats(device)
        seen = 0
        for step, batch in enumerate(loader):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = student(batch.x)
            logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
            t_logits = teacher_logits[batch.idx]
            ctx = AlphaContext(batch.idx, batch.y, logits.detach(), t_logits, epoch + 1, cfg.epochs)
            alpha = rule(ctx)
            loss = samplewise_kd_objective(logits, batch.y, t_logits, alpha, tau, kd_direction, label_smoothing,
                                           check_range=rule_opt is None and step == 0)
            opt.zero_grad(set_to_none=True)
            if rule_opt is not None:
                rule_opt.zero_grad(set_to_none=True)
            loss.backward()
            if (step + 1) % check_every == 0 and not loss_is_healthy(value := loss.item(), max_loss):
                return diverged_result(history, epoch, step, start, value, max_loss)  # as `fit`: before the update
            opt.step()
            if rule_opt is not None:
                rule_opt.step()
            if sched is not None:
                sched.step()
            n = batch.y.shape[0]
            stats.add(alpha, n)
            loss_sum += loss.detach() * n
            correct += (logits.detach().argmax(1) == batch.y).sum()
            seen += n
        epoch_loss = (loss_sum / max(seen, 1)).item()
        if not loss_is_healthy(epoch_loss, max_loss):
            return diverged_result(history, epoch, None, start, epoch_loss, max_loss)
        record = {"epoch": epoch + 1, "loss": epoch_loss, "train_acc": correct.item() / max(seen, 1),
                  "lr": opt.param_groups[0]["lr"], **stats.summary()}
        history.append(record)
        epochs.set_postfix(loss=f"{epoch_loss:.4f}", alpha=f"{record['alpha_mean']:.3f}")
    return FitResult("ok", cfg.epochs, history, time.perf_counter() - start)


def fit_tgeo(student: nn.Module, fusion_net: nn.Module, loader, val_loader, cfg: TrainConfig, *,
             teacher_logits: torch.Tensor, class_means: torch.Tensor | None = None, features: str = "both",
             tau: float = 4.0, fusion_lr: float = 1e-3, fusion_weight_decay: float = 0.0,
             inner_lr: float | None = None, outer_every: int = 1, kd_direction: str = "forward",
             label_smoothing: float = 0.0, device: torch.device | str = "cpu", progress: bool = True,
             desc: str = "tgeo", check_every: int = 1, max_loss: float = 1e4, virtual: str = "sgd",
             train_fusion: bool = True,
             epoch_hook: Callable[[int, nn.Module, nn.Module], dict] | None = None) -> FitResult:
    """TGeo-KD: train `student` and f_w together, alternating per batch (see `bilevel`).

    `loader` is the training split (teacher_logits are its cached teacher outputs, indexed by batch.idx),
    `val_loader` the held-out validation split whose CE is f_w's objective (never the test set).
    class_means (T-bar) defaults to `teacher_class_means(teacher_logits, loader.y)`. f_w is stepped every
    `outer_every` batches with Adam(fusion_lr, fusion_weight_decay); inner_lr (the virtual step's eta)
    follows the student's current lr unless given. History adds, per epoch: the alpha statistics,
    `val_loss` (mean validation CE after the virtual step) and `hypergrad_norm` (mean |dL_val/dw|).
    `virtual` is the lookahead's update rule (`bilevel.VIRTUAL_STEPS`); `train_fusion=False` keeps f_w at its
    initialisation (the frozen control: no outer step at all, what the authors' released code amounts to).
    `epoch_hook(epoch, student, fusion_net)`, if given, adds its dict to each epoch's history record (e.g. the
    learned alpha by group, so a page can plot it over training).
    """
    device = torch.device(device)
    check_feature_set(features)
    if isinstance(outer_every, bool) or not isinstance(outer_every, int) or outer_every < 1:
        raise ValueError(f"outer_every must be a positive int (f_w is stepped every that many batches), "
                         f"got {outer_every!r}")
    _check_teacher_logits(teacher_logits, loader)
    teacher_logits = teacher_logits.to(device)
    if class_means is None and features != "intra":
        class_means = teacher_class_means(teacher_logits, loader.y.to(device))
    if class_means is not None:
        class_means = class_means.to(device)
    student.to(device)
    fusion_net.to(device)
    opt = make_optimizer(student.parameters(), cfg)
    sched = make_scheduler(opt, cfg, len(loader))
    fusion_opt = torch.optim.Adam(fusion_net.parameters(), lr=fusion_lr, weight_decay=fusion_weight_decay)
    val_batches = _cycle(val_loader)
    use_amp = device.type == "cuda"
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    epochs = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    step_count = 0
    for epoch in epochs:
        student.train()
        fusion_net.train()
        loss_sum = torch.zeros((), device=device)
        val_sum = torch.zeros((), device=device)
        hg_sum = torch.zeros((), device=device)
        outer_steps = 0
        correct = torch.zeros((), device=device, dtype=torch.long)
        stats = AlphaStats(device)
        seen = 0
        for step, batch in enumerate(loader):
            outer = train_fusion and step_count % outer_every == 0
            step_count += 1
            vb = next(val_batches) if outer else None
            check = (step + 1) % check_every == 0
            out = bilevel_step(student, fusion_net, opt, fusion_opt if outer else None, batch.x, batch.y,
                               teacher_logits[batch.idx], None if vb is None else vb.x,
                               None if vb is None else vb.y, class_means=class_means, features=features,
                               inner_lr=inner_lr, tau=tau, direction=kd_direction,
                               label_smoothing=label_smoothing, use_amp=use_amp, virtual=virtual,
                               healthy=(lambda v: loss_is_healthy(v.item(), max_loss)) if check else None)
            if not out.stepped:  # checked after the backward pass, before the student's update (as `fit`)
                return diverged_result(history, epoch, step, start, out.loss.item(), max_loss)
            if sched is not None:
                sched.step()
            n = batch.y.shape[0]
            stats.add(out.alpha, n)
            loss_sum += out.loss * n
            if outer:
                val_sum += out.val_loss
                hg_sum += out.hypergrad_norm
                outer_steps += 1
            correct += (out.logits.argmax(1) == batch.y).sum()
            seen += n
        epoch_loss = (loss_sum / max(seen, 1)).item()
        if not loss_is_healthy(epoch_loss, max_loss):
            return diverged_result(history, epoch, None, start, epoch_loss, max_loss)
        k = max(outer_steps, 1)
        record = {"epoch": epoch + 1, "loss": epoch_loss, "train_acc": correct.item() / max(seen, 1),
                  "lr": opt.param_groups[0]["lr"], "val_loss": (val_sum / k).item() if outer_steps else math.nan,
                  "hypergrad_norm": (hg_sum / k).item(), **stats.summary()}
        if epoch_hook is not None:
            record.update(epoch_hook(epoch + 1, student, fusion_net))
        history.append(record)
        epochs.set_postfix(loss=f"{epoch_loss:.4f}", alpha=f"{record['alpha_mean']:.3f}")
    return FitResult("ok", cfg.epochs, history, time.perf_counter() - start)


@torch.no_grad()
def predict_alphas(student: nn.Module, fusion_net: nn.Module, x: torch.Tensor, targets: torch.Tensor,
                   teacher_logits: torch.Tensor, class_means: torch.Tensor | None, features: str = "both",
                   batch_size: int = 1024) -> torch.Tensor:
    """The learned alpha_i = f_w(Delta_i) of every sample (eval mode), e.g. to plot them by motivation group.

    `x` must already be the model's input (normalised as in training, e.g. `DeviceLoader.prepare`).
    """
    was = student.training, fusion_net.training
    student.eval()
    fusion_net.eval()
    try:
        out = []
        for i in range(0, x.shape[0], batch_size):
            sl = slice(i, i + batch_size)
            delta = geometry_features(student(x[sl]), teacher_logits[sl], targets[sl], class_means, features)
            out.append(fusion_net(delta))
        return torch.cat(out) if out else torch.zeros(0)
    finally:
        student.train(was[0])
        fusion_net.train(was[1])
