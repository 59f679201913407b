"""The two engines that train a group of students in one loop: `torch.func` vmap over stacked parameters
(CUDA) and a plain loop over the models (CPU), with the RNG helpers that keep each student's dropout its own."""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from kdutils.config import TrainConfig
from kdutils.objectives import DEFAULT, get_objective
from kdutils.training.stacked import Guard, SpecTensors, StudentSpec
from kdutils.training.train import make_optimizer, make_scheduler


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
                 steps_per_epoch: int, device: torch.device, compiled: bool = False,
                 objective: str = DEFAULT) -> None:
        from torch.func import stack_module_state

        self.models, self.device, self.compiled = list(models), device, compiled
        stacked = get_objective(objective, "stacked").stacked
        assert stacked is not None  # get_objective checked that the objective has this form
        self.objective = stacked
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
        # (module's _parameters/_buffers dict, key, 0 = parameter / 1 = buffer, index); ties kept
        slots: list[tuple[dict[str, Any], str, int, int]] = []
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
                                                   t_logits, self.specs, use_amp, self.objective)
        else:
            fwd = self._fwd.get(shared_x)
            if fwd is None:
                fwd = self._fwd[shared_x] = torch.vmap(self._call, in_dims=(0, 0, None if shared_x else 0),
                                                       randomness="different")
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = fwd(self.flat_params, self.flat_buffers, x)
            losses = self.objective(logits, y, t_logits, self.specs)
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
                       use_amp: bool, objective: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward of the K stacked students and their objectives, written for torch.compile (functional_call).
    objective: the stacked form of a registered objective (default: the registry's default)."""
    from torch.func import functional_call

    def call(p, b, xx):
        return functional_call(base, (p, b), (xx,))

    fwd = torch.vmap(call, in_dims=(0, 0, None if shared_x else 0), randomness="different")
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        logits = fwd(params, buffers, x)
    objective = objective or get_objective(DEFAULT, "stacked").stacked
    assert objective is not None
    return objective(logits, y, t_logits, specs), logits


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
                 steps_per_epoch: int, device: torch.device, rng_states=None, objective: str = DEFAULT) -> None:
        self.models, self.specs, self.device = list(models), list(specs), device
        self.objective = get_objective(objective).batch
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
        losses: list[torch.Tensor] = []
        logits: list[torch.Tensor] = []
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
            loss = self.objective(out.float(), yk, None if tk is None else tk.float(), tau=spec.tau, alpha=spec.alpha,
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
