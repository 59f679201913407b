"""The GPU script's benchmarks: `kdutils.bench` for each task and K, plus achieved TFLOP/s against the chip.

Why FLOPs here: the ratios (fast path / plain loop, together / sequence) say how much the fast path gains, not
how far it is from the device's ceiling. The student's training step is counted once with
`torch.utils.flop_counter` (matrix products and convolutions, forward and backward; the teacher's forward is
added for the plain loop, which runs it every step), and the ceiling is measured on the spot with a large
bf16 matrix product (a datasheet figure is kept beside it where the device is known).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch

from kdutils.bench import run as bench
from kdutils.models import build_model

#: Vendor figures for dense matrix work (TFLOP/s), by the name CUDA reports; leads, not readings (H200.md).
DATASHEET_TFLOPS = {"NVIDIA H200": {"bf16": 990.0, "fp32": 67.0}, "NVIDIA H100 80GB HBM3": {"bf16": 990.0,
                                                                                           "fp32": 67.0}}


def train_step_flops(model_name: str, batch: int = 8, backward: bool = True) -> float:
    """FLOPs per sample of one training step (forward + backward) or forward pass of a model on MNIST shapes."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(model_name, (1, 28, 28), 10)
    x = torch.randn(batch, 1, 28, 28)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x)
        if backward:
            out.sum().backward()
    return counter.get_total_flops() / batch


def measured_peak_tflops(device: torch.device, n: int = 8192, repeats: int = 10) -> float | None:
    """bf16 n x n x n matrix product on random data, median of `repeats` timed with CUDA events (None on CPU)."""
    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize(device)
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return 2 * n ** 3 / times[len(times) // 2] / 1e12


def achieved(res: dict[str, Any], peak_bf16: float | None, device: torch.device) -> dict[str, Any]:
    """TFLOP/s of each timed row of a bench result, and its fraction of the measured bf16 peak."""
    task = bench.TASKS[res["task"]]
    student = train_step_flops(task.student)
    teacher = train_step_flops(task.teacher, backward=False)
    rows = {}
    for r in res["rows"]:
        per_sample = student + (teacher if r["name"].startswith("reference") else 0.0)
        tflops = per_sample * r["samples_per_s"] / 1e12
        rows[r["name"]] = {"tflops": tflops, "of_measured_bf16_peak": None if not peak_bf16 else tflops / peak_bf16}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"student_train_flops_per_sample": student, "teacher_forward_flops_per_sample": teacher,
            "measured_bf16_peak_tflops": peak_bf16, "datasheet_tflops": DATASHEET_TFLOPS.get(name), "rows": rows}


def run_benchmarks(device: torch.device, *, tasks: tuple[str, ...] = ("mlp", "resnet_mlp"),
                   ks: tuple[int, ...] = (4, 16),
                   steps: int, warmup: int, batch_size: int = 128, workers: int, data: str = "auto",
                   compile_task: str | None = "mlp", compile_after_s: float = 45.0, rounds: int = 1,
                   record: bool = True, time_left: Callable[[], float] = lambda: float("inf"),
                   log: Callable[[str], None] = print, out: list[dict[str, Any]] | None = None
                   ) -> list[dict[str, Any]]:
    """Every (task, K) of the grid in this one process, then, if more than `compile_after_s` seconds are left,
    `compile_task` at the first K again with its torch.compile'd variants (recorded as variant "compile").
    Returns the results (each recorded when `record`), appended to `out` as they finish, so that a caller
    that cuts the run short keeps the finished ones."""
    peak = measured_peak_tflops(device)
    if peak is not None:
        log(f"measured bf16 matrix peak: {peak:.0f} TFLOP/s")
    out = [] if out is None else out
    grid = [(task, k, False) for task in tasks for k in ks]
    if compile_task is not None:
        grid.append((compile_task, ks[0], True))
    for task, k, compiled in grid:
        if compiled and time_left() < compile_after_s:
            log(f"torch.compile variants of {task} skipped: {time_left():.0f} s left, compiling needs more")
            continue
        started = time.perf_counter()
        try:
            res = bench.bench_task(task, device=device, steps=steps, warmup=warmup, batch_size=batch_size, k=k,
                                   data=data, workers=workers, compile_student=compiled, profile=False,
                                   rounds=rounds)
        except Exception as err:  # e.g. torch.compile without a working compiler: the other items go on
            log(f"== {task}, K={k}{' + torch.compile' if compiled else ''}: failed ({type(err).__name__}: "
                f"{str(err)[:300]})")
            continue
        res["achieved"] = achieved(res, peak, device)
        res["wall_s"] = time.perf_counter() - started
        log(bench.format_result(res, device))
        for name, a in res["achieved"]["rows"].items():
            share = "" if a["of_measured_bf16_peak"] is None else f" ({100 * a['of_measured_bf16_peak']:.2f}% of peak)"
            log(f"   {name[:72]:<72} {a['tflops']:8.3f} TFLOP/s{share}")
        if record:
            variant = "compile" if compiled else ("" if k == 4 else f"k{k}")
            log(f"   recorded: {bench.record(res, device, variant)}")
        out.append(res)
    return out


__all__ = ["DATASHEET_TFLOPS", "achieved", "measured_peak_tflops", "run_benchmarks", "train_step_flops"]
