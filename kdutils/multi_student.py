"""Train K students of one architecture together: one data pipeline and one teacher forward per step for all.

A sweep over tau/alpha (or seeds) trains many copies of the same small net on the same data. Run one by one,
each copy pays for its own batches, its own teacher forward (when the inputs are augmented) and, on a GPU,
its own few hundred kernel launches per step, while each kernel is far too small to fill the device.
`fit_students` trains the K copies in one loop instead:

* **vmap engine** (the default on CUDA): the K students' parameters and buffers are stacked with
  `torch.func.stack_module_state` into (K, ...) leaf tensors, the forward pass is one call of the
  architecture with those slices swapped in (what `torch.func.functional_call` does, without its per-call
  bookkeeping) under `torch.vmap` (so each layer is one batched kernel for all K), the K
  objectives are computed at once by `stacked_kd_objective` (each student with its own tau, alpha, KL
  direction and label smoothing), their sum gets one backward, and one optimizer steps the stacked tensors.
  SGD and Adam are elementwise, so one optimizer over (K, ...) tensors is exactly K optimizers. BatchNorm
  buffers are stacked too and updated in place by the batched forward (each student keeps its own running
  statistics, checked against separate runs in the tests).
* **loop engine**: the K real models, K optimizers, one after the other inside each step (still one batch
  and one teacher forward per step). It runs exactly the same operations as `train.fit`, so it is bitwise
  identical to separate runs, including dropout: each student's global RNG state is saved and restored around
  its step (`rng_states`). `mode="auto"` picks it on CPU (compute-bound: batched matmuls are no faster
  than K plain ones there, see `resolve_mode`) and for models with dropout (vmap cannot reproduce a
  separate run's dropout masks), and falls back to it if the vmap engine fails on the first step (an op
  without a batching rule, data-dependent Python control flow, ...).
* `compile=True` (opt-in, vmap only) runs the vmap engine's forward and objectives through torch.compile:
  fewer, fused kernels and far less Python per step, after a one-off compilation of tens of seconds.

Precision: on CUDA the forward passes run under bf16 autocast, exactly as in `train.fit`; the objectives
are computed in float32.

Data order. Each student may have its own loader (a different seed gives a different order and different
augmentation draws); loaders that are the same object are iterated once and their batches shared. With one
loader the batch is shared by all K (`in_dims=None` for the inputs); with several, the batches of the
distinct loaders are stacked to (K, B, ...) and the teacher runs once on their concatenation. The loaders
must have the same number of batches of the same sizes (same data, same batch size).

Equivalence with `train.fit` (same init, same loader seed): the loop engine gives identical results; the
vmap engine computes the same arithmetic with batched kernels (batched matmul / convolution) whose
summation order may differ from the unbatched ones, so parameters and losses agree to float32 rounding that
grows slowly with training (the tests use rtol 1e-4, atol 1e-5 after a few epochs on CPU).
"""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .losses import check_alpha, check_direction, check_smoothing, check_tau, kd_objective, kl_terms
from .progress import tqdm
from .train import (FitResult, diverged_result, freeze, loss_is_healthy, make_optimizer, make_scheduler,
                    progress_enabled)

MODES = ("auto", "vmap", "loop")

#: Called by an engine after the backward pass and before the update with some students' losses and their
#: indices; returns the indices that diverged now (the engine then skips their update).
Guard = Callable[[torch.Tensor, Iterable[int]], list[int]]


# ----------------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class StudentSpec:
    """How one student's objective is weighted: alpha * tau^2 KL + (1 - alpha) * CE(label-smoothed)."""

    tau: float = 1.0
    alpha: float = 0.0
    kd_direction: str = "forward"
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_tau(self.tau))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        object.__setattr__(self, "label_smoothing", check_smoothing(self.label_smoothing))
        check_direction(self.kd_direction)


def as_spec(spec: StudentSpec | Mapping[str, Any]) -> StudentSpec:
    if isinstance(spec, StudentSpec):
        return spec
    unknown = set(spec) - {"tau", "alpha", "kd_direction", "label_smoothing"}
    if unknown:
        raise ValueError(f"unknown student spec key(s) {sorted(unknown)}; allowed: tau, alpha, kd_direction, "
                         "label_smoothing")
    return StudentSpec(**spec)


# ------------------------------------------------------------------------------------------------- objective
@dataclass
class SpecTensors:
    """The K specs as device tensors, built once per training run: creating them every step would copy from
    the host each time (on CUDA a synchronising copy that stalls the otherwise asynchronous loop). Masks are
    only kept where the students differ (e.g. some alpha = 0, some not): fewer kernels per step otherwise."""

    specs: tuple[StudentSpec, ...]
    alpha: torch.Tensor  # (K,)
    one_minus_alpha: torch.Tensor  # (K,), computed in double like the Python scalar in kd_objective
    tau: torch.Tensor  # (K, 1, 1)
    tau_sq: torch.Tensor  # (K, 1), computed in double like the Python scalar in kd_loss
    eps: torch.Tensor | None  # (K, 1) label smoothing, None when no student smooths
    smooth_mask: torch.Tensor | None  # (K, 1) bool, None when all or none smooth
    reverse: torch.Tensor | None  # (K, 1) bool, None when every KL is forward
    kd_mask: torch.Tensor | None  # (K,) alpha > 0, None when all or none are
    ce_mask: torch.Tensor | None  # (K,) alpha < 1, None when all or none are

    @property
    def any_kd(self) -> bool:
        return any(sp.alpha > 0 for sp in self.specs)

    @property
    def any_ce(self) -> bool:
        return any(sp.alpha < 1 for sp in self.specs)

    @classmethod
    def build(cls, specs: Sequence[StudentSpec | Mapping[str, Any]], device: torch.device | str) -> "SpecTensors":
        specs = tuple(as_spec(s) for s in specs)
        device = torch.device(device)
        opts = dict(device=device, dtype=torch.float32)

        def mask(flags: list[bool], shape: tuple[int, ...]) -> torch.Tensor | None:
            return None if all(flags) or not any(flags) else torch.tensor(flags, device=device).reshape(shape)

        k = len(specs)
        eps = [sp.label_smoothing for sp in specs]
        reverse = [sp.kd_direction == "reverse" for sp in specs]
        return cls(
            specs=specs,
            alpha=torch.tensor([sp.alpha for sp in specs], **opts),
            one_minus_alpha=torch.tensor([1.0 - sp.alpha for sp in specs], **opts),
            tau=torch.tensor([sp.tau for sp in specs], **opts)[:, None, None],
            tau_sq=torch.tensor([sp.tau * sp.tau for sp in specs], **opts)[:, None],
            eps=torch.tensor(eps, **opts)[:, None] if any(e > 0 for e in eps) else None,
            smooth_mask=mask([e > 0 for e in eps], (k, 1)),
            reverse=torch.tensor(reverse, device=device)[:, None] if any(reverse) else None,
            kd_mask=mask([sp.alpha > 0 for sp in specs], (k,)),
            ce_mask=mask([sp.alpha < 1 for sp in specs], (k,)),
        )


def _weighted(weight: torch.Tensor, term: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """weight * term, and exactly 0 with no gradient (even for a non-finite term) where `mask` is False."""
    product = weight * term
    return product if mask is None else torch.where(mask, product, torch.zeros_like(product))


def stacked_kd_objective(logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor | None,
                         specs: SpecTensors | Sequence[StudentSpec | Mapping[str, Any]]) -> torch.Tensor:
    """The K students' `kd_objective`s at once: logits (K, B, C) -> losses (K,).

    targets are (B,) or (K, B); teacher_logits (B, C), (K, B, C) or None (then every alpha must be 0).
    Same formula and operation order as `losses.kd_objective` (KL via log-softmax, tau^2 scaling, batch
    means, 1 - alpha and tau^2 computed in double precision like the Python scalars there); a term whose
    weight is 0 contributes exactly 0 and no gradient, as in `kd_objective`.
    """
    k, b, _ = logits.shape
    st = specs if isinstance(specs, SpecTensors) else SpecTensors.build(specs, logits.device)
    if len(st.specs) != k:
        raise ValueError(f"got {len(st.specs)} student specs for {k} students' logits")
    s = logits.float()
    total = None
    if st.any_ce:
        targets = targets.expand(k, b) if targets.ndim == 1 else targets
        log_p = F.log_softmax(s, dim=-1)
        per_ce = -log_p.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)  # (K, B) NLL
        if st.eps is not None:
            smoothed = (1.0 - st.eps) * per_ce + st.eps * (-log_p.mean(dim=-1))
            per_ce = smoothed if st.smooth_mask is None else torch.where(st.smooth_mask, smoothed, per_ce)
        total = _weighted(st.one_minus_alpha, per_ce.mean(dim=-1), st.ce_mask)
    if not st.any_kd:
        return total
    if teacher_logits is None:
        raise ValueError("teacher_logits is None but some student has alpha > 0")
    t = teacher_logits.detach().float()
    t = t.unsqueeze(0) if t.ndim == 2 else t
    log_s = F.log_softmax(s / st.tau, dim=-1)
    log_t = F.log_softmax(t / st.tau, dim=-1)
    kl = kl_terms(log_t, log_s).sum(dim=-1)  # forward KL(P_t || P_s), 0 log 0 = 0 for a masked class
    if st.reverse is not None:
        rev = kl_terms(log_s, log_t).sum(dim=-1)
        kl = torch.where(st.reverse, rev, kl)
    kd = _weighted(st.alpha, (kl * st.tau_sq).mean(dim=-1), st.kd_mask)
    return kd if total is None else kd + total


# ------------------------------------------------------------------------------------------------------ RNG
def capture_rng_state(device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The global RNG state a model's dropout will draw from (CPU, plus the CUDA device's when on CUDA)."""
    device = torch.device(device)
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _restore_rng(state, device: torch.device) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def has_dropout(model: nn.Module) -> bool:
    """True if any dropout module could zero activations in train mode (vmap cannot replay its masks)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


# --------------------------------------------------------------------------------------------------- engines
class _VmapEngine:
    """K students as stacked (K, ...) tensors, one batched forward/backward and one optimizer step."""

    name = "vmap"

    def __init__(self, models: Sequence[nn.Module], cfg: TrainConfig, specs: Sequence[StudentSpec],
                 steps_per_epoch: int, device: torch.device, compiled: bool = False) -> None:
        from torch.func import stack_module_state

        self.models, self.device, self.compiled = list(models), device, compiled
        if compiled:
            self.name = "vmap+compile"
            self._meta_base = _meta_base(self.models[0])
        self.specs = SpecTensors.build(specs, device)
        self.params, self.buffers = stack_module_state(self.models)
        self.flat_params, self.flat_buffers = tuple(self.params.values()), tuple(self.buffers.values())
        self.opt = make_optimizer(list(self.flat_params), cfg)
        self.sched = make_scheduler(self.opt, cfg, steps_per_epoch)
        self.inactive: list[int] = []
        # A private copy of the architecture whose parameter and buffer slots are pointed at the (vmapped) slices
        # on every call. This is what torch.func.functional_call does, minus its per-call bookkeeping (checks,
        # restoring the originals), which matters when a step is a few hundred microseconds.
        self.base = base = copy.deepcopy(self.models[0])
        p_index = {id(t): i for i, t in enumerate(dict(base.named_parameters()).values())}
        b_index = {id(t): i for i, t in enumerate(dict(base.named_buffers()).values())}
        slots = []  # (module's _parameters/_buffers dict, key, 0 = parameter / 1 = buffer, index); ties kept
        for module in base.modules():
            slots += [(module._parameters, key, 0, p_index[id(t)]) for key, t in module._parameters.items()
                      if t is not None]
            slots += [(module._buffers, key, 1, b_index[id(t)]) for key, t in module._buffers.items()
                      if t is not None and id(t) in b_index]

        def call(flat_params, flat_buffers, x):
            sources = (flat_params, flat_buffers)
            for table, key, kind, index in slots:
                table[key] = sources[kind][index]
            return base(x)

        self._call = call
        self._fwd: dict[bool, Any] = {}

    def train(self) -> None:
        self.base.train()

    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def step(self, x: torch.Tensor, shared_x: bool, y: torch.Tensor, t_logits: torch.Tensor | None,
             use_amp: bool, guard: Guard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.compiled:
            self._meta_base.train(self.base.training)
            losses, logits = _compiled_objective()(self._meta_base, self.params, self.buffers, x, shared_x, y,
                                                   t_logits, self.specs, use_amp)
        else:
            fwd = self._fwd.get(shared_x)
            if fwd is None:
                fwd = self._fwd[shared_x] = torch.vmap(self._call, in_dims=(0, 0, None if shared_x else 0),
                                                       randomness="different")
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = fwd(self.flat_params, self.flat_buffers, x)
            losses = stacked_kd_objective(logits, y, t_logits, self.specs)
        self.opt.zero_grad(set_to_none=True)
        if self.inactive:
            losses.index_select(0, self._keep).sum().backward()
            for p in self.flat_params:
                if p.grad is not None:
                    p.grad.index_fill_(0, self._dropped, 0.0)
        else:
            losses.sum().backward()
        if guard is not None and guard(losses.detach(), range(len(self.models))):
            for p in self.flat_params:  # the students that diverged now keep their weights from before this step
                if p.grad is not None:
                    p.grad.index_fill_(0, self._dropped, 0.0)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return losses.detach(), logits.detach()

    @torch.no_grad()
    def write_back(self, k: int) -> None:
        """Copy student k's slice of the stacked parameters and buffers into its own model."""
        model = self.models[k]
        for name, p in model.named_parameters():
            p.copy_(self.params[name][k])
        for name, b in model.named_buffers():
            if name in self.buffers:
                b.copy_(self.buffers[name][k])

    @torch.no_grad()
    def deactivate(self, k: int) -> None:
        """Freeze student k as it is now: keep its weights, then zero its slice (and optimizer state) so that
        the stacked tensors stay finite and it stops moving while the others train on."""
        self.write_back(k)
        self.inactive.append(k)
        self._keep = torch.tensor([i for i in range(len(self.models)) if i not in self.inactive], device=self.device)
        self._dropped = torch.tensor(self.inactive, device=self.device)
        for p in self.params.values():
            p[k].zero_()
            for state in self.opt.state.get(p, {}).values():
                if torch.is_tensor(state) and state.ndim > 0 and state.shape[0] == len(self.models):
                    state[k].zero_()
        for b in self.buffers.values():
            if b.is_floating_point():
                b[k].zero_()

    def finish(self) -> None:
        for k in range(len(self.models)):
            if k not in self.inactive:
                self.write_back(k)


def _vmapped_objective(base: nn.Module, params: dict, buffers: dict, x: torch.Tensor, shared_x: bool,
                       y: torch.Tensor, t_logits: torch.Tensor | None, specs: SpecTensors,
                       use_amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward of the K stacked students and their objectives, written for torch.compile (functional_call)."""
    from torch.func import functional_call

    def call(p, b, xx):
        return functional_call(base, (p, b), (xx,))

    fwd = torch.vmap(call, in_dims=(0, 0, None if shared_x else 0), randomness="different")
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits = fwd(params, buffers, x)
    return stacked_kd_objective(logits, y, t_logits, specs), logits


_COMPILED: list[Any] = []
_META_BASES: dict[tuple, nn.Module] = {}


def _compiled_objective():
    """One torch.compile'd `_vmapped_objective` per process, so that every group reuses its compiled code."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(_vmapped_objective))
    return _COMPILED[0]


def _meta_base(model: nn.Module) -> nn.Module:
    """A parameter-free (meta device) copy of the architecture, one per architecture, so that the compiled
    code's guards on the module hold across groups and calls."""
    key = (type(model), repr(model), tuple((n, tuple(t.shape)) for n, t in model.state_dict().items()))
    if key not in _META_BASES:
        _META_BASES[key] = copy.deepcopy(model).to("meta")
    return _META_BASES[key]


class _LoopEngine:
    """The K real models, each with its own optimizer, stepped one after the other on the same batch."""

    name = "loop"

    def __init__(self, models: Sequence[nn.Module], cfg: TrainConfig, specs: Sequence[StudentSpec],
                 steps_per_epoch: int, device: torch.device, rng_states=None) -> None:
        self.models, self.specs, self.device = list(models), list(specs), device
        self.opts = [make_optimizer(m.parameters(), cfg) for m in self.models]
        self.scheds = [make_scheduler(o, cfg, steps_per_epoch) for o in self.opts]
        self.rng = None if rng_states is None else list(rng_states)
        self.inactive: list[int] = []

    def train(self) -> None:
        for m in self.models:
            m.train()

    def lr(self) -> float:
        return self.opts[0].param_groups[0]["lr"]

    def step(self, x: torch.Tensor, shared_x: bool, y: torch.Tensor, t_logits: torch.Tensor | None,
             use_amp: bool, guard: Guard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        losses, logits = [], []
        for k, (model, spec) in enumerate(zip(self.models, self.specs)):
            xk = x if shared_x else x[k]
            yk = y if y.ndim == 1 else y[k]
            tk = None if t_logits is None or spec.alpha == 0 else (t_logits if t_logits.ndim == 2 else t_logits[k])
            if k in self.inactive:  # keep the shapes; a frozen student is neither run nor stepped
                losses.append(torch.full((), float("nan"), device=self.device))
                logits.append(torch.zeros(yk.shape[0], self._num_classes(t_logits, logits), device=self.device))
                continue
            if self.rng is not None:
                _restore_rng(self.rng[k], self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(xk)
            loss = kd_objective(out.float(), yk, None if tk is None else tk.float(), tau=spec.tau, alpha=spec.alpha,
                                direction=spec.kd_direction, label_smoothing=spec.label_smoothing,
                                check_finite=False)
            self.opts[k].zero_grad(set_to_none=True)
            loss.backward()
            if guard is not None and guard(loss.detach().reshape(1), [k]):
                losses.append(loss.detach())
                logits.append(out.detach().float())
                continue  # diverged now: no update, the model keeps its weights from before this step
            self.opts[k].step()
            if self.scheds[k] is not None:
                self.scheds[k].step()
            if self.rng is not None:
                self.rng[k] = capture_rng_state(self.device)
            losses.append(loss.detach())
            logits.append(out.detach().float())
        return torch.stack(losses), torch.stack(logits)

    @staticmethod
    def _num_classes(t_logits, logits) -> int:
        if logits:
            return logits[0].shape[-1]
        if t_logits is not None:
            return t_logits.shape[-1]
        return 1

    def deactivate(self, k: int) -> None:
        self.inactive.append(k)

    def finish(self) -> None:
        pass


# ------------------------------------------------------------------------------------------------------ fit
def resolve_mode(mode: str, models: Sequence[nn.Module], device: torch.device | str) -> str:
    """The engine `mode="auto"` means: "vmap" on CUDA, "loop" on CPU, with dropout, or for a single student.

    On a GPU each kernel of these small nets is far too small for the device, so K students in one batched
    kernel cost little more than one. On a CPU the work is compute-bound and batched matmuls (bmm) are
    slower than plain gemms (measured on 2 cores: mlp_800x2, K=4, vmap 0.77x and loop 0.96x the time of 4
    separate runs), so there the loop engine is used and the gain is the shared data pipeline and teacher.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if len(models) == 1 or torch.device(device).type != "cuda" or any(has_dropout(m) for m in models):
        return "loop"
    return "vmap"


def fit_students(
    models: Sequence[nn.Module],
    loader,
    cfg: TrainConfig,
    *,
    specs: Sequence[StudentSpec | Mapping[str, Any]],
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "students",
    mode: str = "auto",
    rng_states: Sequence[Any] | None = None,
    compile: bool = False,
    check_every: int = 1,
    max_loss: float = 1e4,
) -> list[FitResult]:
    """Train the K `models` in place together; one `FitResult` per student, in order, as `train.fit` gives.

    loader: one loader for all (shared batches), or a sequence of K loaders (the same object may repeat).
    specs: per student tau, alpha, kd_direction, label_smoothing (dicts or `StudentSpec`s).
    teacher / teacher_logits: as in `train.fit`; the teacher runs once per step for everyone, cached logits
    (indexed by `Batch.idx`) are looked up once per distinct loader.
    mode: "vmap", "loop" or "auto" (see `resolve_mode`: vmap on CUDA unless a model has dropout, loop on CPU);
    vmap falls back to loop if its first step fails. compile: run the vmap engine's forward and objective
    through torch.compile (opt-in; the first step compiles for tens of seconds, so it pays off only for long
    runs; falls back to the eager vmap engine if compiling fails; ignored by the loop engine). rng_states: per-student `capture_rng_state()` taken right after building each
    model, so the loop engine replays every student's own dropout stream (as a separate run would draw it).
    A student whose loss becomes non-finite or exceeds `max_loss` (checked with `train.loss_is_healthy`, like
    `fit`: every `check_every` steps after the backward pass and before the update, and at the end of each
    epoch) gets status "diverged" and the same message as `fit` would give, with its weights as they were
    before that update; the others continue.
    """
    device = torch.device(device)
    models = list(models)
    k_students = len(models)
    if k_students == 0:
        raise ValueError("fit_students needs at least one model")
    specs = [as_spec(s) for s in specs]
    if len(specs) != k_students:
        raise ValueError(f"got {len(specs)} specs for {k_students} models; give one spec per student")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if rng_states is not None and len(rng_states) != k_students:
        raise ValueError(f"got {len(rng_states)} rng_states for {k_students} models")
    loaders = list(loader) if isinstance(loader, (list, tuple)) else [loader] * k_students
    if len(loaders) != k_students:
        raise ValueError(f"got {len(loaders)} loaders for {k_students} models; give one loader or one per student")
    distinct: list[Any] = []
    for ld in loaders:
        if not any(ld is d for d in distinct):
            distinct.append(ld)
    which = [next(i for i, d in enumerate(distinct) if d is ld) for ld in loaders]
    steps = len(distinct[0])
    if any(len(d) != steps for d in distinct):
        raise ValueError(f"students trained together need loaders with the same number of batches, got "
                         f"{[len(d) for d in distinct]}")
    need_teacher = any(s.alpha > 0 for s in specs)
    if need_teacher and teacher is None and teacher_logits is None:
        raise ValueError(f"alphas {[s.alpha for s in specs]} need a teacher or cached teacher_logits")
    _check_same_architecture(models)
    if teacher is not None:
        freeze(teacher.to(device))
    if teacher_logits is not None:
        teacher_logits = teacher_logits.to(device)
    for m in models:
        m.to(device)

    mode = resolve_mode(mode, models, device)
    # engines to try in order: a failure in the first step (before any update) moves on to the next one
    plan = (["vmap+compile"] if compile and mode == "vmap" else []) + (["vmap", "loop"] if mode == "vmap" else ["loop"])

    def make_engine(name: str):
        if name.startswith("vmap"):
            return _VmapEngine(models, cfg, specs, steps, device, compiled=name == "vmap+compile")
        return _LoopEngine(models, cfg, specs, steps, device, rng_states)

    engine = make_engine(plan.pop(0))
    use_amp = device.type == "cuda"
    start = time.perf_counter()
    histories: list[list[dict[str, float]]] = [[] for _ in models]
    results: list[FitResult | None] = [None] * k_students
    first_step = True

    def diverge(k: int, epoch: int, step: int | None, loss: float) -> None:
        results[k] = diverged_result(histories[k], epoch, step, start, loss, max_loss)
        engine.deactivate(k)

    def guard(losses: torch.Tensor, ks: Iterable[int]) -> list[int]:
        """Stop every still-training student of `ks` whose loss of this step is unhealthy (one read-back)."""
        bad = []
        for k, value in zip(ks, losses.tolist()):
            if results[k] is None and not loss_is_healthy(value, max_loss):
                diverge(k, epoch, step, value)
                bad.append(k)
        return bad

    epochs = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress_enabled(progress))
    for epoch in epochs:
        if all(r is not None for r in results):
            break
        engine.train()
        loss_sum = torch.zeros(k_students, device=device)
        correct = torch.zeros(k_students, device=device, dtype=torch.long)
        seen = 0
        for step, parts in enumerate(zip(*distinct)):
            x, shared_x, y, t_logits = _assemble(parts, which, need_teacher, teacher, teacher_logits, use_amp, device)
            step_guard = guard if (step + 1) % check_every == 0 else None
            if first_step and plan:
                while True:
                    try:
                        losses, logits = engine.step(x, shared_x, y, t_logits, use_amp, step_guard)
                        break
                    except Exception as err:  # e.g. an op vmap cannot batch: redo the step with the next engine
                        if not plan:
                            raise
                        warnings.warn(f"training {k_students} students with the {engine.name} engine failed "
                                      f"({type(err).__name__}: {str(err)[:300]}); falling back to the {plan[0]} "
                                      "engine", RuntimeWarning, stacklevel=2)
                        engine = make_engine(plan.pop(0))
                        engine.train()
            else:
                losses, logits = engine.step(x, shared_x, y, t_logits, use_amp, step_guard)
            first_step = False
            n = parts[0].y.shape[0]
            loss_sum += losses * n
            yk = y if y.ndim == 2 else y.expand(k_students, -1)
            correct += (logits.argmax(-1) == yk).sum(-1)
            seen += n
            if step_guard is not None and all(r is not None for r in results):
                break
        if all(r is not None for r in results):
            break
        epoch_losses = (loss_sum / max(seen, 1)).tolist()
        accs = [c / max(seen, 1) for c in correct.tolist()]
        lr = engine.lr()
        for k in range(k_students):
            if results[k] is not None:
                continue
            if not loss_is_healthy(epoch_losses[k], max_loss):
                diverge(k, epoch, None, epoch_losses[k])
                continue
            histories[k].append({"epoch": epoch + 1, "loss": epoch_losses[k], "train_acc": accs[k], "lr": lr})
        active = [epoch_losses[k] for k in range(k_students) if results[k] is None]
        if active:
            epochs.set_postfix(loss=f"{min(active):.4f}..{max(active):.4f}")
    engine.finish()
    elapsed = time.perf_counter() - start
    return [r if r is not None else FitResult("ok", cfg.epochs, histories[k], elapsed)
            for k, r in enumerate(results)]


def _assemble(parts, which: list[int], need_teacher: bool, teacher, teacher_logits, use_amp: bool,
              device: torch.device):
    """Inputs, targets and teacher logits of one step from the distinct loaders' batches.

    One distinct loader: x (B, ...), y (B,), teacher (B, C), all shared. Several: stacked per student to
    (K, B, ...), (K, B), (K, B, C); the teacher runs once on the distinct batches concatenated.
    """
    shared = len(parts) == 1
    t_parts = None
    if need_teacher:
        if teacher_logits is not None:
            t_parts = [teacher_logits[p.idx] for p in parts]
        else:
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                xs = parts[0].x if shared else torch.cat([p.x for p in parts])
                out = teacher(xs).float()
            t_parts = [out] if shared else list(out.split([p.x.shape[0] for p in parts]))
    if shared:
        return parts[0].x, True, parts[0].y, None if t_parts is None else t_parts[0]
    sizes = {p.y.shape[0] for p in parts}
    if len(sizes) != 1:
        raise ValueError(f"students trained together need batches of one size per step, got sizes {sorted(sizes)}")
    x = torch.stack([parts[i].x for i in which])
    y = torch.stack([parts[i].y for i in which])
    t = None if t_parts is None else torch.stack([t_parts[i] for i in which])
    return x, False, y, t




def _check_same_architecture(models: Iterable[nn.Module]) -> None:
    models = list(models)
    ref = [(n, tuple(p.shape)) for n, p in models[0].named_parameters()]
    for i, m in enumerate(models[1:], start=1):
        got = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
        if got != ref or type(m) is not type(models[0]):
            raise ValueError(f"student {i} ({type(m).__name__}) differs from student 0 ({type(models[0]).__name__}) "
                             "in architecture; students trained together must have identical parameter shapes")


__all__ = ["MODES", "SpecTensors", "StudentSpec", "as_spec", "capture_rng_state", "fit_students", "has_dropout",
           "resolve_mode", "stacked_kd_objective"]
