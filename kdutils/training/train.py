"""One training loop for teachers and students.

The loop keeps data and work on the device: batches come from a `DeviceLoader`, losses are summed on the
device and read back once per epoch, and on CUDA the forward passes run under bf16 autocast. The loss of every
step (`check_every=1`) is read back after its backward pass and before the update, so a run stops at the first
non-finite (or exploding) loss with its last finite weights; on CUDA that read is one small synchronisation
per step, the price of never training on past a NaN (`check_every=k` checks every k-th step instead).
A teacher is frozen in eval mode; when the student's inputs are deterministic, the caller may pass the
teacher's logits for the whole training set instead of the teacher.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from kdutils.progress import tqdm

from kdutils.config import TrainConfig
from kdutils.objectives import DEFAULT, get_objective


@dataclass
class FitResult:
    """What a training run did: `status` is "ok" or "diverged" (non-finite or exploding loss). The runner
    may turn "ok" into "chance" once it has evaluated the model (see `runner.chance_status`)."""

    status: str
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    message: str = ""
    #: epochs restored from a snapshot (0: trained from the start) and the training time spent before it
    resumed_from: int = 0
    prior_time_s: float = 0.0


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
    check_every: int = 1,
    max_loss: float = 1e4,
    epoch_eval: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int = 1,
    snapshot: Path | None = None,
    snapshot_every: int = 0,
    objective: str = DEFAULT,
) -> FitResult:
    """Train `model` in place on `loader` (yielding `Batch(idx, x, y)`); distil when alpha > 0.
    objective: the registered training objective (`kdutils.objectives`, batch form).

    epoch_eval: called (in eval mode, without gradients) every `eval_every` epochs and after the last one; its
    metrics join that epoch's history entry, so a record holds its own learning curve (convergence checks).

    snapshot / snapshot_every: every `snapshot_every` epochs the whole training state (weights, optimiser,
    schedule, history, the global RNG that drives dropout) is written to `snapshot`, and a run that finds one
    there resumes after its last epoch, with the loader set to the next epoch's order and augmentations: a
    long run killed part-way (a session that ends) loses at most `snapshot_every` epochs and ends as if never
    stopped. The caller deletes the file once the run is recorded."""
    if eval_every < 1:
        raise ValueError(f"eval_every must be an integer >= 1, got {eval_every!r}")
    batch_objective = get_objective(objective).batch
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
    first, prior = 0, 0.0
    if snapshot is not None and snapshot.exists():
        first, prior, history = _restore(snapshot, model, opt, sched, loader, cfg)
    epochs = tqdm(range(first, cfg.epochs), desc=desc, leave=False, disable=not progress_enabled(progress),
                  initial=first, total=cfg.epochs)
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
                    elif teacher is not None:  # one of the two is set when alpha > 0 (checked above)
                        with torch.no_grad():
                            t_logits = teacher(batch.x)
            loss = batch_objective(logits.float(), batch.y, None if t_logits is None else t_logits.float(),
                                   tau=tau, alpha=alpha, direction=kd_direction, label_smoothing=label_smoothing,
                                   check_finite=False)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if (step + 1) % check_every == 0 and not loss_is_healthy(value := loss.item(), max_loss):
                return diverged_result(history, epoch, step, start, value, max_loss)
            opt.step()
            if sched is not None:
                sched.step()
            n = batch.y.shape[0]
            loss_sum += loss.detach() * n
            correct += (logits.detach().argmax(1) == batch.y).sum()
            seen += n
        epoch_loss = (loss_sum / max(seen, 1)).item()
        if not loss_is_healthy(epoch_loss, max_loss):
            return diverged_result(history, epoch, None, start, epoch_loss, max_loss)
        record = {"epoch": epoch + 1, "loss": epoch_loss, "train_acc": correct.item() / max(seen, 1),
                  "lr": opt.param_groups[0]["lr"]}
        if epoch_eval is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == cfg.epochs):
            record.update(evaluate_epoch(model, epoch_eval))
        history.append(record)
        epochs.set_postfix(loss=f"{epoch_loss:.4f}", acc=f"{record['train_acc']:.3f}")
        if snapshot is not None and snapshot_every > 0 and (epoch + 1) % snapshot_every == 0 and epoch + 1 < cfg.epochs:
            _save_snapshot(snapshot, model, opt, sched, epoch + 1, prior + time.perf_counter() - start, history)
    return FitResult("ok", cfg.epochs, history, prior + time.perf_counter() - start, resumed_from=first,
                     prior_time_s=prior)


def _save_snapshot(path: Path, model: nn.Module, opt, sched, epochs_done: int, elapsed: float,
                   history: list[dict[str, float]]) -> None:
    from kdutils.store.io import atomic_torch_save

    atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(),
                       "sched": None if sched is None else sched.state_dict(), "epochs_done": epochs_done,
                       "elapsed_s": elapsed, "history": history, "rng": torch.get_rng_state()}, path)


def _restore(path: Path, model: nn.Module, opt, sched, loader, cfg: TrainConfig) -> tuple[int, float, list]:
    """Load a snapshot written by `_save_snapshot`; returns (epochs done, training seconds so far, history)."""
    state = torch.load(path, weights_only=False)
    done = int(state["epochs_done"])
    if not 0 < done < cfg.epochs:
        raise ValueError(f"{path}: snapshot after {done} epochs does not fit a run of {cfg.epochs} epochs; delete it")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if sched is not None and state["sched"] is not None:
        sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["rng"])
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(done)
    return done, float(state["elapsed_s"]), list(state["history"])


def evaluate_epoch(model: nn.Module, epoch_eval: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Run `epoch_eval(model)` in eval mode without gradients, then restore the model's mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return {k: float(v) for k, v in epoch_eval(model).items()}
    finally:
        model.train(was_training)


def loss_is_healthy(loss: float | torch.Tensor, max_loss: float) -> bool:
    """A loss is healthy when finite and below `max_loss` (an exploding loss counts as divergence too)."""
    value = float(loss)
    return math.isfinite(value) and value < max_loss


def divergence_message(epoch: int, step: int | None, loss: float, max_loss: float) -> str:
    """One wording for `fit` and `fit_students`: where it happened and why it counts as divergence."""
    where = f"epoch {epoch + 1}" + (f", step {step + 1}" if step is not None else " (epoch mean)")
    why = "non-finite" if not math.isfinite(loss) else f"above max_loss={max_loss:g}"
    return f"training diverged in {where}: loss={loss!r} ({why}); weights kept from before that update"


def diverged_result(history: list[dict[str, Any]], epoch: int, step: int | None, start: float, loss: float,
                    max_loss: float) -> FitResult:
    """The FitResult of a run stopped by an unhealthy loss (shared by `fit` and `fit_students`)."""
    return FitResult("diverged", epoch + 1, list(history), time.perf_counter() - start,
                     divergence_message(epoch, step, loss, max_loss))
