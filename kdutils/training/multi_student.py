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
  its step (`rng_states`). `mode="auto"` picks it on CPU when a live teacher is shared (compute-bound:
  batched matmuls are no faster than K plain ones there, see `resolve_mode`) and on CUDA for models with
  dropout (vmap cannot reproduce a separate run's dropout masks), and the vmap engine falls back to it if it
  fails on the first step (an op without a batching rule, data-dependent Python control flow, ...).
* **sequence engine** (the default on CPU when no live teacher is shared): the K students are trained one after
  the other by `train.fit`, each over its loader's epochs replayed from the same start (`set_epoch`) and with its
  own captured RNG state, so each is exactly its separate run. On a CPU the loop engine only pays when a live
  teacher's forward pass is shared by the K students (augmented inputs); with cached logits or no teacher it
  was measured slower than the same K runs in sequence (2 cores, mlp_800x2, K=4: 0.87x and 0.88x), because K
  models' weights stepping in turn no longer stay in the cache. Grouping must never lose, so `mode="auto"`
  picks the sequence there.
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

import time
import warnings
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from kdutils.config import TrainConfig
from kdutils.objectives import DEFAULT
from kdutils.progress import tqdm
from kdutils.training.engines import _LoopEngine, _restore_rng, _VmapEngine, has_dropout
from kdutils.training.stacked import StudentSpec, as_spec
from kdutils.training.train import FitResult, diverged_result, fit, freeze, loss_is_healthy, progress_enabled

MODES = ("auto", "vmap", "loop", "sequence")


# ------------------------------------------------------------------------------------------------------ fit
def resolve_mode(mode: str, models: Sequence[nn.Module], device: torch.device | str,
                 live_teacher: bool = False) -> str:
    """The engine `mode="auto"` means: on CUDA "vmap" (unless a model has dropout or there is one student:
    "loop"); on CPU "loop" when a live teacher's forward pass is shared (`live_teacher`), else "sequence".

    On a GPU each kernel of these small nets is far too small for the device, so K students in one batched
    kernel cost little more than one. On a CPU the work is compute-bound and batched matmuls (bmm) are
    slower than plain gemms (measured on 2 cores: mlp_800x2, K=4, vmap 0.77x the time of 4 separate runs), and
    the loop engine gains only what the K students share: one teacher forward per step instead of K. Without
    a live teacher it lost (0.87x and 0.88x), so the students then run in sequence.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if torch.device(device).type != "cuda":
        return "loop" if live_teacher and len(models) > 1 else "sequence"
    if len(models) == 1 or any(has_dropout(m) for m in models):
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
    objective: str = DEFAULT,
) -> list[FitResult]:
    """Train the K `models` in place together; one `FitResult` per student, in order, as `train.fit` gives.

    loader: one loader for all (shared batches), or a sequence of K loaders (the same object may repeat).
    specs: per student tau, alpha, kd_direction, label_smoothing (dicts or `StudentSpec`s).
    teacher / teacher_logits: as in `train.fit`; the teacher runs once per step for everyone, cached logits
    (indexed by `Batch.idx`) are looked up once per distinct loader.
    mode: "vmap", "loop", "sequence" or "auto" (see `resolve_mode`: vmap on CUDA unless a model has dropout; on
    CPU loop when a live teacher is shared, else sequence);
    vmap falls back to loop if its first step fails. compile: run the vmap engine's forward and objective
    through torch.compile (opt-in; the first step compiles for tens of seconds, so it pays off only for long
    runs; falls back to the eager vmap engine if compiling fails; ignored by the other engines). rng_states:
    per-student `capture_rng_state()` taken right after building each
    model, so the loop engine replays every student's own dropout stream (as a separate run would draw it).
    objective: the registered training objective (`kdutils.objectives`; stacked form for vmap, batch for loop).
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
    student_specs = [as_spec(s) for s in specs]
    if len(student_specs) != k_students:
        raise ValueError(f"got {len(student_specs)} specs for {k_students} models; give one spec per student")
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
    need_teacher = any(s.alpha > 0 for s in student_specs)
    if need_teacher and teacher is None and teacher_logits is None:
        raise ValueError(f"alphas {[s.alpha for s in student_specs]} need a teacher or cached teacher_logits")
    _check_same_architecture(models)
    if teacher is not None:
        freeze(teacher.to(device))
    if teacher_logits is not None:
        teacher_logits = teacher_logits.to(device)
    for m in models:
        m.to(device)

    mode = resolve_mode(mode, models, device, live_teacher=need_teacher and teacher_logits is None)
    if mode == "sequence":
        return _fit_in_sequence(models, loaders, cfg, student_specs, teacher, teacher_logits, device, progress,
                                desc, rng_states, check_every, max_loss, objective)
    # engines to try in order: a failure in the first step (before any update) moves on to the next one
    plan = (["vmap+compile"] if compile and mode == "vmap" else []) + (["vmap", "loop"] if mode == "vmap" else ["loop"])

    def make_engine(name: str):
        if name.startswith("vmap"):
            return _VmapEngine(models, cfg, student_specs, steps, device, compiled=name == "vmap+compile",
                               objective=objective)
        return _LoopEngine(models, cfg, student_specs, steps, device, rng_states, objective=objective)

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


def _fit_in_sequence(models: list[nn.Module], loaders: list[Any], cfg: TrainConfig, specs: list[StudentSpec],
                     teacher: nn.Module | None, teacher_logits: torch.Tensor | None, device: torch.device,
                     progress: bool, desc: str, rng_states: Sequence[Any] | None, check_every: int,
                     max_loss: float, objective: str = DEFAULT) -> list[FitResult]:
    """The sequence engine: each student is its own `train.fit`, its loader replayed from the epoch the group
    started at, its RNG state restored first; afterwards every loader stands where a grouped run leaves it."""
    starts = {id(ld): getattr(ld, "epoch", None) for ld in loaders}
    results = []
    for k, (model, spec, ld) in enumerate(zip(models, specs, loaders)):
        if (start := starts[id(ld)]) is not None:
            ld.set_epoch(start)
        if rng_states is not None:
            _restore_rng(rng_states[k], device)
        results.append(fit(model, ld, cfg, teacher=teacher if spec.alpha > 0 else None,
                           teacher_logits=teacher_logits if spec.alpha > 0 else None, tau=spec.tau,
                           alpha=spec.alpha, kd_direction=spec.kd_direction, label_smoothing=spec.label_smoothing,
                           device=device, progress=progress, desc=f"{desc} {k + 1}/{len(models)}",
                           check_every=check_every, max_loss=max_loss, objective=objective))
    for ld in loaders:
        if (start := starts[id(ld)]) is not None:
            ld.set_epoch(start + cfg.epochs)
    return results


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


__all__ = ["MODES", "fit_students", "resolve_mode"]
