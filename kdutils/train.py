"""One training loop for teachers and students.

The loop keeps data and work on the device: batches come from a `DeviceLoader`, losses are summed on the
device and read back once per epoch (plus a cheap finiteness check every `check_every` steps), and on CUDA the
forward passes run under bf16 autocast. A teacher is frozen in eval mode; when the student's inputs are
deterministic, the caller may pass the teacher's logits for the whole training set instead of the teacher.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from .progress import tqdm

from .config import TrainConfig
from .losses import kd_objective


@dataclass
class FitResult:
    """What a training run did: `status` is "ok" or "diverged" (non-finite or exploding loss)."""

    status: str
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    message: str = ""


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """Per-step scheduler (cosine over all steps, or step decay at epoch milestones), or None."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    if cfg.schedule == "step":
        milestones = [m * steps_per_epoch for m in cfg.milestones]
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.gamma)
    return None


def freeze(teacher: nn.Module) -> nn.Module:
    """Teachers are never trained by distillation: eval mode (no dropout, fixed BN) and no gradients."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def progress_enabled(progress: bool) -> bool:
    return progress and os.environ.get("KDUTILS_PROGRESS", "1") != "0"


def fit(
    model: nn.Module,
    loader,
    cfg: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    tau: float = 1.0,
    alpha: float = 0.0,
    kd_direction: str = "forward",
    label_smoothing: float = 0.0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "train",
    check_every: int = 50,
    max_loss: float = 1e4,
) -> FitResult:
    """Train `model` in place on `loader` (yielding `Batch(idx, x, y)`); distil when alpha > 0."""
    device = torch.device(device)
    if alpha > 0 and teacher is None and teacher_logits is None:
        raise ValueError(f"alpha={alpha} needs a teacher or cached teacher_logits")
    if teacher is not None:
        freeze(teacher.to(device))
    if teacher_logits is not None:
        teacher_logits = teacher_logits.to(device)
    model.to(device)
    opt = make_optimizer(model.parameters(), cfg)
    sched = make_scheduler(opt, cfg, len(loader))
    use_amp = device.type == "cuda"
    start = time.perf_counter()
    history: list[dict[str, float]] = []
    epochs = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    for epoch in epochs:
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step, batch in enumerate(loader):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(batch.x)
                t_logits = None
                if alpha > 0:
                    if teacher_logits is not None:
                        t_logits = teacher_logits[batch.idx]
                    else:
                        with torch.no_grad():
                            t_logits = teacher(batch.x)
            loss = kd_objective(logits.float(), batch.y, None if t_logits is None else t_logits.float(),
                                tau=tau, alpha=alpha, direction=kd_direction, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            n = batch.y.shape[0]
            loss_sum += loss.detach() * n
            correct += (logits.detach().argmax(1) == batch.y).sum()
            seen += n
            if (step + 1) % check_every == 0 and not loss_is_healthy(loss.detach(), max_loss):
                return _diverged(history, epoch, start, loss.item())
        epoch_loss = (loss_sum / max(seen, 1)).item()
        if not loss_is_healthy(epoch_loss, max_loss):
            return _diverged(history, epoch, start, epoch_loss)
        record = {"epoch": epoch + 1, "loss": epoch_loss, "train_acc": correct.item() / max(seen, 1),
                  "lr": opt.param_groups[0]["lr"]}
        history.append(record)
        epochs.set_postfix(loss=f"{epoch_loss:.4f}", acc=f"{record['train_acc']:.3f}")
    return FitResult("ok", cfg.epochs, history, time.perf_counter() - start)


def loss_is_healthy(loss: float | torch.Tensor, max_loss: float) -> bool:
    """A loss is healthy when finite and below `max_loss` (an exploding loss counts as divergence too)."""
    value = float(loss)
    return math.isfinite(value) and value < max_loss


def _diverged(history: list[dict[str, Any]], epoch: int, start: float, loss: float) -> FitResult:
    message = f"training diverged in epoch {epoch + 1}: loss={loss!r}"
    return FitResult("diverged", epoch + 1, history, time.perf_counter() - start, message)
