"""Bilevel training of f_w by a one-step unrolled hypergradient (our choice; the paper does not say how).

The paper's problem is  min_w  J_val(theta*(w))  s.t.  theta*(w) = argmin_theta J_train(theta, w), where
J_train is the alpha_i-fused KD objective (alpha_i = f_w(Delta_i)) and J_val the plain cross-entropy on a
held-out validation split. The authors' released code computes alpha under no_grad and backpropagates the
validation loss of the *current* student, which has no path to w: f_w never trains (research notes, A2).

What we do instead, per training batch (the DARTS / Meta-Weight-Net one-step approximation of theta*(w)):

1. virtual step: theta'(w) = theta - eta * grad_theta J_train(theta, w) on the batch, built with
   create_graph=True so that theta' is a differentiable function of w;
2. outer step: L_val(w) = CE(student_{theta'(w)}(x_val), y_val) on a validation batch, evaluated with
   `torch.func.functional_call`; its gradient dL_val/dw (a second-order term through grad_theta J_train)
   goes to f_w's optimizer;
3. inner step: the student takes its own optimizer step on J_train(theta, w_new) with alpha from the updated
   f_w, detached (the student never trains f_w). The forward pass of step 1 is reused, so the student's
   BatchNorm statistics are updated once per batch; the virtual forward on validation data runs on copies
   of the buffers.

eta defaults to the student's current learning rate. The virtual step is plain SGD (no momentum or weight
decay) by default, as in Meta-Weight-Net: it only has to say in which direction changing alpha moves the
student. `virtual="optimizer"` makes it the real optimiser's update instead (SGD with the optimiser's momentum
buffer, momentum and weight decay), so the lookahead f_w is trained on is the step the student then takes:
with plain SGD the tau^2-scaled KD term acts like a larger step and may reward alpha -> 1 for that alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from kdutils.chapters.tgeo.geometry import geometry_features
from kdutils.chapters.tgeo.objective import fuse, per_sample_terms

VIRTUAL_STEPS = ("sgd", "optimizer")

__all__ = ["BilevelStats", "VIRTUAL_STEPS", "check_virtual", "optimizer_virtual_step", "virtual_step", "unrolled_validation_loss", "hypergradient", "bilevel_step"]


@dataclass
class BilevelStats:
    """What one bilevel step produced, all detached: the fused training loss the student stepped on, the
    validation CE after the virtual step (nan when f_w was not updated), the batch's alphas and logits."""

    loss: torch.Tensor
    val_loss: torch.Tensor
    alpha: torch.Tensor
    logits: torch.Tensor
    hypergrad_norm: torch.Tensor
    #: False when the `healthy` check rejected the fused loss: the student's update was then skipped (f_w's
    #: hypergradient step of this batch, which comes first, was taken).
    stepped: bool = True


def _trainable(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p for k, p in module.named_parameters() if p.requires_grad}


def virtual_step(params: Mapping[str, torch.Tensor], loss: torch.Tensor, inner_lr: float
                 ) -> dict[str, torch.Tensor]:
    """theta' = theta - eta * d loss / d theta, differentiable w.r.t. whatever `loss` depends on."""
    if not inner_lr > 0:
        raise ValueError(f"inner_lr (the virtual step's learning rate) must be > 0, got {inner_lr!r}")
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    return {k: p if g is None else p - inner_lr * g for (k, p), g in zip(params.items(), grads)}


def check_virtual(virtual: str) -> str:
    if virtual not in VIRTUAL_STEPS:
        raise ValueError(f"unknown virtual step {virtual!r}; choose one of: {', '.join(VIRTUAL_STEPS)}")
    return virtual


def optimizer_virtual_step(params: Mapping[str, torch.Tensor], loss: torch.Tensor, opt: torch.optim.Optimizer
                           ) -> dict[str, torch.Tensor]:
    """theta' as `opt` (torch SGD, no dampening) would move theta: d = g + wd * theta, buf' = mu * buf + d
    (buf' = d at the first step), theta' = theta - lr * (d + mu * buf' if nesterov else buf'); differentiable
    w.r.t. whatever `loss` depends on (the buffer itself is a constant of the step)."""
    if not isinstance(opt, torch.optim.SGD):
        raise ValueError(f"virtual='optimizer' follows torch.optim.SGD, got {type(opt).__name__}")
    group = opt.param_groups[0]
    lr, mu, wd, nesterov = (float(group["lr"]), float(group["momentum"]), float(group["weight_decay"]),
                            bool(group["nesterov"]))
    if float(group.get("dampening", 0.0)) != 0.0:
        raise ValueError("virtual='optimizer' does not model SGD dampening")
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
    out = {}
    for (k, p), g in zip(params.items(), grads):
        if g is None:
            out[k] = p
            continue
        d = g + wd * p.detach() if wd else g
        if mu:
            buf = opt.state.get(p, {}).get("momentum_buffer")
            step = d if buf is None else mu * buf.detach() + d
            step = d + mu * step if nesterov else step
        else:
            step = d
        out[k] = p - lr * step
    return out


def _val_ce(student: nn.Module, new_params: Mapping[str, torch.Tensor], val_x: torch.Tensor,
            val_y: torch.Tensor) -> torch.Tensor:
    buffers = {k: b.clone() for k, b in student.named_buffers()}  # the real running stats stay untouched
    val_logits = functional_call(student, ({**new_params}, buffers), (val_x,), strict=False)
    return F.cross_entropy(val_logits.to(torch.promote_types(val_logits.dtype, torch.float32)), val_y)


def unrolled_validation_loss(student: nn.Module, fusion_net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                             teacher_logits: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, *,
                             class_means: torch.Tensor | None, features: str, inner_lr: float, tau: float,
                             direction: str = "forward", label_smoothing: float = 0.0,
                             fusion_params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """L_val(w): validation CE of the student after one virtual step on the alpha-fused training batch.

    `fusion_params` (name -> tensor) replaces f_w's parameters, so the loss can be differentiated or
    finite-differenced as a plain function of w (what the hypergradient tests do).
    """
    logits = student(x)
    delta = geometry_features(logits, teacher_logits, y, class_means, features)
    alpha = fusion_net(delta) if fusion_params is None else functional_call(fusion_net, dict(fusion_params), (delta,))
    kd, ce = per_sample_terms(logits, y, teacher_logits, tau, direction, label_smoothing)
    new_params = virtual_step(_trainable(student), fuse(kd, ce, alpha), inner_lr)
    return _val_ce(student, new_params, val_x, val_y)


def hypergradient(student: nn.Module, fusion_net: nn.Module, *args, **kwargs) -> tuple[torch.Tensor, ...]:
    """dL_val/dw for each trainable parameter of f_w (same arguments as `unrolled_validation_loss`)."""
    val_loss = unrolled_validation_loss(student, fusion_net, *args, **kwargs)
    w = list(_trainable(fusion_net).values())
    grads = torch.autograd.grad(val_loss, w, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(w, grads))


def bilevel_step(student: nn.Module, fusion_net: nn.Module, student_opt: torch.optim.Optimizer,
                 fusion_opt: torch.optim.Optimizer | None, x: torch.Tensor, y: torch.Tensor,
                 teacher_logits: torch.Tensor, val_x: torch.Tensor | None = None,
                 val_y: torch.Tensor | None = None, *, class_means: torch.Tensor | None, features: str,
                 inner_lr: float | None = None, tau: float, direction: str = "forward",
                 label_smoothing: float = 0.0, use_amp: bool = False,
                 healthy: Callable[[torch.Tensor], bool] | None = None, virtual: str = "sgd") -> BilevelStats:
    """One alternating step: f_w's hypergradient step (skipped when fusion_opt or val_x is None), then the
    student's own step on the fused loss with the updated, detached alpha. Returns detached statistics.

    `virtual` ("sgd" or "optimizer", see the module docstring) is the lookahead's update rule.
    `healthy(loss)`, if given, is asked after the student's backward pass and before its optimizer step (as
    `kdutils.training.train.fit` checks): when it returns False the student's update is skipped (its weights stay those
    from before this batch) and the result has `stepped=False`."""
    if inner_lr is None:
        inner_lr = float(student_opt.param_groups[0]["lr"])
    device_type = x.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_amp):
        logits = student(x)
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    delta = geometry_features(logits, teacher_logits, y, class_means, features)
    kd, ce = per_sample_terms(logits, y, teacher_logits, tau, direction, label_smoothing)
    val_loss = torch.full((), float("nan"), device=x.device)
    hg_norm = torch.zeros((), device=x.device)
    if fusion_opt is not None and val_x is not None:
        if val_y is None:
            raise ValueError("val_x is given but val_y is None; the outer loss needs validation labels")
        fused = fuse(kd, ce, fusion_net(delta))
        if check_virtual(virtual) == "optimizer":
            new_params = optimizer_virtual_step(_trainable(student), fused, student_opt)
        else:
            new_params = virtual_step(_trainable(student), fused, inner_lr)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_amp):
            outer = _val_ce(student, new_params, val_x, val_y)
        w = list(_trainable(fusion_net).values())
        # retain_graph: the second-order path runs through the forward graph of kd/ce, which the student's
        # own backward below still needs
        grads = torch.autograd.grad(outer, w, allow_unused=True, retain_graph=True)
        grads = tuple(torch.zeros_like(p) if g is None else g for p, g in zip(w, grads))
        fusion_opt.zero_grad(set_to_none=True)
        for p, g in zip(w, grads):
            p.grad = g
        fusion_opt.step()
        val_loss = outer.detach()
        hg_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).detach()
        del new_params, outer, grads
    with torch.no_grad():
        alpha = fusion_net(delta)
    loss = fuse(kd, ce, alpha)
    student_opt.zero_grad(set_to_none=True)
    loss.backward()
    if healthy is not None and not healthy(loss.detach()):
        return BilevelStats(loss.detach(), val_loss, alpha, logits.detach(), hg_norm.detach(), stepped=False)
    student_opt.step()
    return BilevelStats(loss.detach(), val_loss, alpha, logits.detach(), hg_norm.detach())
