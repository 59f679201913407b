"""Throughput benchmarks, measured side by side in one process: `python -m kdutils bench --help`.

For each task (a teacher -> student pair on MNIST-shaped data) it times, after a warm-up:

1. **reference**: a distillation loop written the usual way: `torch.utils.data.DataLoader` over a
   `TensorDataset` of float normalised images (num_workers 0 on CPU, 2 with pinned memory on CUDA), the
   teacher's forward pass at every step, fp32, the KD loss written with `F.kl_div`, `opt.step()`, and the
   usual `loss.item()` per step for the running loss;
2. **fast path**: `train.fit` as the runner calls it: `DeviceLoader` (whole split on the device), the
   teacher's logits computed once beforehand and looked up per batch, bf16 autocast on CUDA (optionally the
   student under `torch.compile`, `--compile`);
3. **K sequential**: K fast-path runs one after the other (K temperatures), and
4. **K together**: the same K students trained together by `multi_student.fit_students` (its default engine
   for the device: vmap on CUDA; on CPU with cached teacher logits the sequence engine, and beside it the loop
   engine that it replaces, for comparison; `--engine` to choose; with `--compile` also the compiled vmap
   engine). Compilation happens in the warm-up and is not timed.

Ratios: fast path / reference (samples per second) and K together / K sequential (student-samples per
second, i.e. the wall-time ratio). The one-off cost of the teacher-logit cache is printed separately; it is
paid once per dataset, teacher and split and shared by every student, tau, alpha and epoch. Models are
freshly initialised (throughput does not depend on the weights). `--record` writes the figures with their
provenance to `results/bench/<task>-<device kind>.json`.
"""
from __future__ import annotations

import argparse
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, cast

import torch
import torch.nn.functional as F
from torch import nn

from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.metrics import predict_logits
from kdutils.models import build_model
from kdutils.training.multi_student import MODES, fit_students, resolve_mode
from kdutils.training.train import fit, freeze

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
TAU, ALPHA, LR = 4.0, 0.9, 0.05
EPOCHS, MNIST_TRAIN = 20, 60_000  # for the extrapolated whole-run ratio (the cpu profile's student epochs)


@dataclass(frozen=True)
class Task:
    teacher: str
    student: str
    description: str
    targets: dict[str, float] = field(default_factory=dict)  # GPU targets for the ratios


TASKS = {
    "mlp": Task("mlp_1200x2", "mlp_800x2", "Hinton MNIST: teacher mlp_1200x2 -> student mlp_800x2",
                {"fast_vs_reference": 5.0, "together_vs_sequential": 3.0}),
    "resnet_mlp": Task("resnet20", "mlp_256x4", "MNIST: teacher resnet20 (1x28x28) -> student mlp_256x4",
                       {"fast_vs_reference": 10.0, "together_vs_sequential": 3.0}),
}


# ------------------------------------------------------------------------------------------------------ data
def load_images(kind: str, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """n MNIST training images (uint8 (n, 1, 28, 28)) and labels, or random ones of that shape.

    kind: "auto" (real MNIST when its files are found under the data root, else random), "mnist", "random".
    """
    if kind not in ("auto", "mnist", "random"):
        raise ValueError(f"unknown data {kind!r}; choose one of: auto, mnist, random")
    if kind != "random":
        try:
            from kdutils.data.registry import load_dataset
            from kdutils.paths import REPO_ROOT, data_root

            roots = [data_root(), REPO_ROOT.parent / "shared" / "data"]
            for root in roots:
                try:
                    ds = load_dataset("mnist", "train", root=root, download=False)
                    break
                except Exception:
                    ds = None
            if ds is None:
                raise FileNotFoundError(f"no MNIST files under {', '.join(map(str, roots))}")
            reps = math.ceil(n / len(ds))
            x, y = ds.x.repeat(reps, 1, 1, 1)[:n], ds.y.repeat(reps)[:n]
            return x, y, f"MNIST (real, {len(ds)} training images" + (", repeated)" if reps > 1 else ")")
        except Exception as err:
            if kind == "mnist":
                raise
            note = f"random uint8 images of MNIST's shape (MNIST not found: {err})"
    else:
        note = "random uint8 images of MNIST's shape"
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),
            torch.randint(0, 10, (n,), generator=gen), note)


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255.0 - MNIST_MEAN[0]) / MNIST_STD[0]


# ----------------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[[], Any]) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _peak_since(device: torch.device, baseline: int) -> float | None:
    """Peak CUDA memory of the timed run above what was allocated before it (data on the device, cached logits,
    the models' own weights), in MiB: the optimizer state, gradients, activations and stacked copies."""
    if device.type != "cuda":
        return None
    return (torch.cuda.max_memory_allocated(device) - baseline) / 2**20


def _reset_peak(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def reference_loop(teacher: nn.Module, student: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                   steps: int, warmup: int, device: torch.device, workers: int) -> float:
    """The usual way: DataLoader, teacher forward every step, fp32. Returns seconds for `steps` steps."""
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(_normalised(x), y), batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    teacher.eval()
    student.train()
    opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=0.9)
    batches = iter(loader)
    running_loss, start = 0.0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        with torch.no_grad():
            t_logits = teacher(xb)
        s_logits = student(xb)
        kd = F.kl_div(F.log_softmax(s_logits / TAU, dim=1), F.softmax(t_logits / TAU, dim=1),
                      reduction="batchmean") * TAU * TAU
        loss = ALPHA * kd + (1 - ALPHA) * F.cross_entropy(s_logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running_loss += loss.item()
    _sync(device)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------------- the run
@dataclass
class Row:
    name: str
    samples: int  # student-samples processed in the timed part
    seconds: float
    peak_mb_per_student: float | None = None

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds


def bench_task(name: str, *, device: torch.device, steps: int, warmup: int, batch_size: int, k: int,
               data: str, workers: int, compile_student: bool, profile: bool, engine: str = "auto",
               rounds: int = 1) -> dict[str, Any]:
    task = TASKS[name]
    b = batch_size
    n = steps * b  # the fast path trains one epoch over exactly `steps` batches
    x, y, data_note = load_images(data, max(n, (warmup + 1) * b))
    x, y = x[:n], y[:n]
    in_shape, classes = (1, 28, 28), 10

    def student(seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return build_model(task.student, in_shape, classes).to(device)

    torch.manual_seed(123)
    teacher = freeze(build_model(task.teacher, in_shape, classes).to(device))
    rows: list[Row] = []

    # 1. the reference loop
    ref_s = reference_loop(teacher, student(), x, y, batch_size=b, steps=steps, warmup=warmup, device=device,
                           workers=workers)
    rows.append(Row(f"reference (DataLoader, workers={workers}, teacher every step, fp32)", n, ref_s))

    # teacher-logit cache, paid once
    box: list[torch.Tensor] = []
    cache_s = _timed(device, lambda: box.append(predict_logits(teacher, x, device=device, mean=MNIST_MEAN,
                                                               std=MNIST_STD).to(device)))
    cached = box[0]
    cfg = TrainConfig(epochs=1, batch_size=b, lr=LR, momentum=0.9)
    loader = DeviceLoader(x, y, b, mean=MNIST_MEAN, std=MNIST_STD, device=device, seed=0)
    n_warm = min(warmup, steps) * b
    warm = DeviceLoader(x[:n_warm], y[:n_warm], b, mean=MNIST_MEAN, std=MNIST_STD, device=device, seed=0)
    amp = " + bf16 autocast" if device.type == "cuda" else ""

    def fast(model: nn.Module, tau: float = TAU) -> None:
        fit(model, loader, cfg, teacher_logits=cached, tau=tau, alpha=ALPHA, device=device, progress=False)

    # 2. the fast path (and 3. K of them in sequence)
    taus = [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 32.0, 64.0][:k] if k <= 8 else [float(i + 1) for i in range(k)]
    model = student()
    fit(model, warm, cfg, teacher_logits=cached, tau=TAU, alpha=ALPHA, device=device, progress=False)
    base = _reset_peak(device)
    fast_s = _timed(device, lambda: fast(model))
    rows.append(Row(f"fast path (fit: DeviceLoader + cached teacher logits{amp})", n, fast_s,
                    _peak_since(device, base)))
    fast_c_s = None
    if compile_student:
        compiled = cast(nn.Module, torch.compile(student()))  # an OptimizedModule: a Module at run time
        fit(compiled, warm, cfg, teacher_logits=cached, tau=TAU, alpha=ALPHA, device=device, progress=False)
        fast_c_s = _timed(device, lambda: fast(compiled))
        rows.append(Row("fast path + torch.compile(student)", n, fast_c_s))
    # 3. and 4.: K in sequence and K together, measured in `rounds` interleaved rounds (median of each), so
    # that a load that changes during the benchmark (a shared machine) hits every variant alike
    specs = [dict(tau=t, alpha=ALPHA) for t in taus]
    mode = resolve_mode(engine, [student()] * k, device)
    modes = [mode] + (["loop"] if device.type == "cpu" and mode != "loop" else [])  # what auto avoids on a CPU
    for m in modes:  # warm-up
        fit_students([student(i) for i in range(k)], warm, cfg, specs=specs, teacher_logits=cached, device=device,
                     progress=False, mode=m)
    peaks: dict[str, float | None] = {}
    models: list[nn.Module] = []

    def together(m: str, compiled: bool = False) -> float:
        models[:] = [student(i) for i in range(k)]
        base = _reset_peak(device)
        results: list = []
        seconds = _timed(device, lambda: results.extend(fit_students(
            models, loader, cfg, specs=specs, teacher_logits=cached, device=device, progress=False, mode=m,
            compile=compiled)))
        assert all(r.status == "ok" for r in results), [r.message for r in results]
        peak = _peak_since(device, base)
        peaks[m + ("+compile" if compiled else "")] = None if peak is None else peak / k
        return seconds

    times: dict[str, list[float]] = {"separate fits": [], **{f"{m} engine": [] for m in modes}}
    for _ in range(rounds):
        fresh = [student(i) for i in range(k)]
        times["separate fits"].append(sum(_timed(device, partial(fast, m, t)) for m, t in zip(fresh, taus)))
        for m in modes:
            times[f"{m} engine"].append(together(m))
    med = {m: statistics.median(v) for m, v in times.items()}
    seq_s, tog_s = med["separate fits"], med[f"{mode} engine"]
    note = f", median of {rounds} interleaved rounds" if rounds > 1 else ""
    rows.append(Row(f"{k} students in sequence (fast path, taus {', '.join(f'{t:g}' for t in taus)}{note})", k * n,
                    seq_s))
    rows.append(Row(f"{k} students together (fit_students, {mode} engine{note})", k * n, tog_s, peaks[mode]))
    ratios = {"fast_vs_reference": (n / fast_s) / (n / ref_s), "together_vs_sequential": seq_s / tog_s}
    if len(modes) > 1:
        rows.append(Row(f"{k} students together (fit_students, loop engine, for comparison{note})", k * n,
                        med["loop engine"]))
        ratios["loop_together_vs_sequential"] = seq_s / med["loop engine"]
    # Extrapolated from the measured rates: a whole run (EPOCHS x MNIST_TRAIN samples) of one student with
    # the teacher-logit cache charged to it, i.e. the least favourable case for caching (one student only).
    whole = EPOCHS * MNIST_TRAIN
    ratios["fast_vs_reference_whole_run_with_cache"] = (whole * ref_s / n) / (MNIST_TRAIN * cache_s / n
                                                                              + whole * fast_s / n)
    if fast_c_s is not None:  # measured above when compile_student
        fit_students([student(i) for i in range(k)], warm, cfg, specs=specs, teacher_logits=cached, device=device,
                     progress=False, mode="vmap", compile=True)  # warm-up and compilation
        tog_c_s = together("vmap", compiled=True)
        rows.append(Row(f"{k} students together (fit_students, vmap engine + torch.compile)", k * n, tog_c_s,
                        peaks["vmap+compile"]))
        ratios.update({"compiled_fast_vs_reference": ref_s / fast_c_s,
                       "compiled_together_vs_sequential": seq_s / tog_c_s,
                       "compiled_together_vs_compiled_sequential": k * fast_c_s / tog_c_s})
    out = {"task": name, "description": task.description, "data": data_note, "batch_size": b, "steps": steps,
           "warmup_steps": warmup, "k": k, "tau_alpha": [TAU, ALPHA], "teacher_cache_s": cache_s,
           "rows": [{"name": r.name, "samples": r.samples, "seconds": r.seconds, "samples_per_s": r.samples_per_s,
                     "peak_mb_per_student": r.peak_mb_per_student} for r in rows],
           "ratios": ratios, "gpu_targets": task.targets, "threads": torch.get_num_threads(),
           "reference_workers": workers, "engine": mode, "rounds": rounds,
           "round_seconds": {m: v for m, v in times.items()}}
    if profile:
        out["profile"] = profile_steps(models, cfg, specs, cached, x, y, device, min(steps, 10), mode)
    return out


def profile_steps(models, cfg: TrainConfig, specs, cached: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  device: torch.device, steps: int, mode: str) -> str:
    """torch.profiler over `steps` steps of the single fast path and of K students together: top-ops tables."""
    from torch.profiler import ProfilerActivity, profile

    b = cfg.batch_size
    loader = DeviceLoader(x[:steps * b], y[:steps * b], b, mean=MNIST_MEAN, std=MNIST_STD, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    tables = []
    for label, run in (
        ("fast path, 1 student", lambda: fit(models[0], loader, cfg, teacher_logits=cached, tau=specs[0]["tau"],
                                             alpha=ALPHA, device=device, progress=False)),
        (f"{len(models)} students together ({mode})", lambda: fit_students(models, loader, cfg, specs=specs,
                                                                           teacher_logits=cached, device=device,
                                                                           progress=False, mode=mode)),
    ):
        _sync(device)
        with profile(activities=activities) as prof:
            run()
            _sync(device)
        averages = prof.key_averages()
        table = None
        keys = ("self_device_time_total", "self_cuda_time_total") if device.type == "cuda" else ("self_cpu_time_total",)
        for key in keys:
            try:
                table = averages.table(sort_by=key, row_limit=15)
                break
            except Exception:
                continue
        tables.append(f"--- profile: {label}, {steps} steps ---\n{table}")
    return "\n".join(tables)


# ------------------------------------------------------------------------------------------------- reporting
def format_result(res: dict[str, Any], device: torch.device) -> str:
    lines = [f"== {res['task']}: {res['description']}",
             f"   data: {res['data']}; device: {device_label(device)}; batch {res['batch_size']}, "
             f"{res['steps']} timed steps after {res['warmup_steps']} warm-up; intra-op threads {res['threads']}",
             f"   {'variant':<72} {'samples/s':>11} {'seconds':>8} {'peak MB/student':>16}"]
    for r in res["rows"]:
        peak = "" if r["peak_mb_per_student"] is None else f"{r['peak_mb_per_student']:.1f}"
        lines.append(f"   {r['name']:<72} {r['samples_per_s']:>11.0f} {r['seconds']:>8.2f} {peak:>16}")
    ratios, targets = res["ratios"], res["gpu_targets"]
    lines.append(f"   teacher-logit cache (once per dataset, shared by all students): {res['teacher_cache_s']:.2f} s")
    lines.append(f"   ratio fast path / reference:             {ratios['fast_vs_reference']:6.2f}x"
                 f"   (GPU target >= {targets['fast_vs_reference']:g}x)")
    lines.append(f"   ratio fast path / reference, whole {EPOCHS}-epoch run of one student on {MNIST_TRAIN:,} images with "
                 f"the teacher cache charged to it (extrapolated): {ratios['fast_vs_reference_whole_run_with_cache']:.2f}x")
    if "compiled_fast_vs_reference" in ratios:
        lines.append(f"   ratio fast path + compile / reference:   {ratios['compiled_fast_vs_reference']:6.2f}x")
    lines.append(f"   ratio {res['k']} together / {res['k']} in sequence:          "
                 f"{ratios['together_vs_sequential']:6.2f}x   (GPU target >= {targets['together_vs_sequential']:g}x)")
    if "loop_together_vs_sequential" in ratios:
        lines.append(f"   ratio {res['k']} together (loop engine) / {res['k']} in sequence: "
                     f"{ratios['loop_together_vs_sequential']:6.2f}x   (why the CPU default is the sequence)")
    if "compiled_together_vs_sequential" in ratios:
        lines.append(f"   ratio {res['k']} together + compile / {res['k']} in sequence: "
                     f"{ratios['compiled_together_vs_sequential']:6.2f}x   (vs {res['k']} compiled runs in sequence: "
                     f"{ratios['compiled_together_vs_compiled_sequential']:.2f}x)")
    return "\n".join(lines)


def device_label(device: torch.device) -> str:
    from kdutils.store.provenance import device_description

    return device_description(device)


def device_kind(device: torch.device) -> str:
    """'cpu', or 'cuda-<gpu name>' (e.g. cuda-nvidia-h100-80gb-hbm3) so that GPU models do not overwrite each other."""
    if device.type != "cuda":
        return "cpu"
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")


def record(res: dict[str, Any], device: torch.device, variant: str = "") -> str:
    """Write results/bench/<task>[-<variant>]-<device kind>.json (variant e.g. "k16" for another K)."""
    from kdutils.paths import results_dir
    from kdutils.store.io import atomic_write_json
    from kdutils.store.provenance import provenance

    stem = res["task"] + (f"-{variant}" if variant else "")
    path = results_dir() / "bench" / f"{stem}-{device_kind(device)}.json"
    payload = {k: v for k, v in res.items() if k != "profile"}
    payload["provenance"] = provenance(device)
    atomic_write_json(path, payload)
    return str(path)


# ------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kdutils bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="all", choices=[*TASKS, "all"])
    p.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 100 on CPU, 400 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 3 on CPU, 20 on CUDA)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("-k", "--students", type=int, default=4, help="students trained together (default 4)")
    p.add_argument("--data", default="auto", choices=["auto", "mnist", "random"])
    p.add_argument("--workers", type=int, default=None, help="reference DataLoader workers (default 0 CPU, 2 CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--engine", default="auto", choices=MODES,
                   help="fit_students engine for the students trained together (auto: vmap on CUDA, loop on CPU)")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile'd variants: the student in fit, and fit_students(compile=True)")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds of the K-in-sequence and K-together timings, median reported "
                        "(default 3 on CPU, where other processes' load moves, 1 on CUDA)")
    p.add_argument("--profile", action="store_true", help="torch.profiler tables of a few steps")
    p.add_argument("--record", action="store_true", help="write results/bench/<task>-<device kind>.json")
    args = p.parse_args(argv)
    for name in ("steps", "warmup", "batch_size", "students", "rounds"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    steps = args.steps or (400 if gpu else 100)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 3)
    workers = args.workers if args.workers is not None else (2 if gpu else 0)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    for name in tasks:
        res = bench_task(name, device=device, steps=steps, warmup=max(warmup, 1), batch_size=args.batch_size,
                         k=args.students, data=args.data, workers=workers, compile_student=args.compile,
                         profile=args.profile, engine=args.engine, rounds=args.rounds or (1 if gpu else 3))
        print(format_result(res, device), flush=True)
        if args.profile:
            print(res["profile"], flush=True)
        if args.record:
            print(f"   recorded: {record(res, device)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
