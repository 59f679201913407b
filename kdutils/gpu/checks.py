"""Correctness on the device before anything is timed or recorded: plain Python, no pytest needed.

Why plain Python, not the test suite: the checks must run wherever the GPU script runs, and the suite's
training tests pin the CPU (or compare with float32 at tolerances that bf16 autocast cannot meet). The
device image lists pytest, so the script also runs the few tests that do run CUDA code (`PYTEST_NODES`)
when pytest is importable; their outcome is reported, and the plain checks below are what it relies on.

The engine check trains K students together and K separately from the same initial weights on the same
batches. On CUDA both run under bf16 autocast, whose products are rounded to 8 mantissa bits (about 4e-3
relative); the vmap engine's batched kernels sum in another order than `fit`'s, so the two drift apart by a
few such roundings per step. The tolerance (`TOLERANCE`) is stated per precision: the relative distance of
each student's weights from its separate run must stay below it, and far below the distance between two
students that start from the same weights and differ only in their loss weighting (the size of the effect
that a wrong engine, e.g. one that mixes up the students' temperatures, would have).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.paths import REPO_ROOT
from kdutils.training.multi_student import fit_students
from kdutils.training.train import fit

#: Relative weight distance allowed between a student trained in a group and its separate run, per precision
#: (after `STEPS` SGD steps): fp32 kernels differ in summation order only; bf16 autocast rounds every product.
TOLERANCE = {"fp32": 1e-4, "bf16": 3e-2}
#: ... and the same distance must be below this fraction of the distance between two different students.
SEPARATION = 0.25
STEPS = 24

#: The suite's tests that run CUDA code when a GPU is there (most training tests pin the CPU, and those that
#: follow KDUTILS_DEVICE compare against float32 at tolerances bf16 cannot meet, so the checks below are the
#: training checks on the device); run by the GPU script when pytest is installed, their outcome reported.
PYTEST_NODES = (
    "tests/test_device_loader.py::test_cuda_loader_matches_contract",
    "tests/test_multi_student.py::test_auto_mode_batches_on_cuda_and_loops_on_cpu_only_for_a_shared_live_teacher",
)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0
    values: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name} ({self.seconds:.1f} s): {self.detail}"


def _toy(n: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable 10-class data: labels are the argmax of a fixed random linear map of the inputs."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=gen)
    w = torch.randn(64, 10, generator=gen)
    return x, (x.flatten(1) @ w).argmax(1)


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def _distance(a: nn.Module, b: nn.Module) -> float:
    da = torch.cat([p.detach().float().flatten() for p in a.parameters()])
    db = torch.cat([p.detach().float().flatten() for p in b.parameters()])
    return float((da - db).norm() / db.norm())


def check_fit_learns(device: torch.device) -> Check:
    """`fit` on the device: the loss falls, no divergence, training accuracy well above chance (10%)."""
    start = time.perf_counter()
    x, y = _toy(2048, device)
    model = _mlp(0)
    result = fit(model, DeviceLoader(x, y, 128, device=device, seed=0), TrainConfig(epochs=4, lr=0.1),
                 device=device, progress=False)
    first, last = result.history[0], result.history[-1]
    ok = result.status == "ok" and last["loss"] < first["loss"] and last["train_acc"] > 0.5
    return Check("fit learns on the device", ok, f"status {result.status}, loss {first['loss']:.3f} -> "
                 f"{last['loss']:.3f}, train accuracy {last['train_acc']:.3f} (needs > 0.5)",
                 time.perf_counter() - start, {"loss_first": first["loss"], "loss_last": last["loss"],
                                               "train_acc": last["train_acc"]})


def check_engines(device: torch.device, k: int = 4, engines: tuple[str, ...] = ("vmap", "loop", "sequence")
                  ) -> list[Check]:
    """Each engine's K students against K separate `fit` runs (same init, same batches), within `TOLERANCE`."""
    precision = "bf16" if device.type == "cuda" else "fp32"
    x, y = _toy(32 * STEPS // 2, device, seed=1)
    teacher = _mlp(99).to(device)
    with torch.no_grad():
        t_logits = teacher(x.to(device)).float() * 3
    cfg = TrainConfig(epochs=2, lr=0.05, schedule="cosine")
    specs = [dict(tau=t, alpha=a) for t, a in zip((1.0, 2.0, 4.0, 8.0, 16.0, 20.0), (0.0, 0.5, 0.9, 1.0, 0.9, 0.5))]
    specs = (specs * (k // len(specs) + 1))[:k]
    separate = []  # one initial weight for all: students then differ by their loss weighting alone
    for spec in specs:
        model = _mlp(0)
        fit(model, DeviceLoader(x, y, 32, device=device, seed=3), cfg, teacher_logits=t_logits, device=device,
            progress=False, tau=spec["tau"], alpha=spec["alpha"])
        separate.append(model)
    between = min(_distance(separate[i], separate[i + 1]) for i in range(k - 1))
    out = []
    for engine in engines:
        start = time.perf_counter()
        models = [_mlp(0) for _ in range(k)]
        with warnings.catch_warnings(record=True) as caught:  # a silent fall-back would test the wrong engine
            warnings.simplefilter("always")
            results = fit_students(models, DeviceLoader(x, y, 32, device=device, seed=3), cfg, specs=specs,
                                   teacher_logits=t_logits, device=device, progress=False, mode=engine)
        fell_back = [str(w.message)[:200] for w in caught if "falling back" in str(w.message)]
        worst = max(_distance(m, s) for m, s in zip(models, separate))
        tol = TOLERANCE[precision] if engine == "vmap" else TOLERANCE["fp32"]
        ok = (all(r.status == "ok" for r in results) and not fell_back and worst <= tol
              and worst <= SEPARATION * between)
        out.append(Check(f"{engine} engine, {k} students together = {k} separate fits ({precision})", ok,
                         f"worst relative weight distance {worst:.2e} (tolerance {tol:g}, and <= {SEPARATION:g} x "
                         f"{between:.2e}, the distance between two students that differ in their loss only)"
                         + (f"; FELL BACK: {fell_back[0]}" if fell_back else ""), time.perf_counter() - start,
                         {"worst": worst, "tolerance": tol, "between_students": between, "precision": precision,
                          "fell_back": fell_back}))
    return out


def check_runner_records(device: torch.device) -> Check:
    """`runner.run` on the device, twice into two empty stores: both records say the device, and the second
    run repeats the first (same metrics and loss history: the run is reproducible on this device)."""
    import tempfile
    from pathlib import Path

    from kdutils.config import DataConfig, RunConfig
    from kdutils.store.store import ResultStore
    from kdutils.training.runner import run

    start = time.perf_counter()
    cfg = RunConfig(experiment="gpu_check", role="student", model="mlp", model_kwargs={"hidden": [64]},
                    data=DataConfig(dataset="mnist", n_train=1024, n_test=512), profile="smoke",
                    train=TrainConfig(epochs=2, batch_size=128, lr=0.1))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            first, second = (run(cfg, ResultStore(Path(tmp) / name), device=device, progress=False)
                             for name in ("a", "b"))
    except FileNotFoundError as err:
        return Check("runner records on the device", True, f"skipped: MNIST not found ({str(err)[:120]})")
    same = first["metrics"] == second["metrics"] and [h["loss"] for h in first["history"]] == \
        [h["loss"] for h in second["history"]]
    on_device = first["provenance"]["device"].startswith(device.type)
    ok = first["status"] == "ok" and same and on_device
    return Check("runner records on the device, reproducibly", ok,
                 f"status {first['status']}, accuracy {first['metrics'].get('accuracy', float('nan')):.3f}, "
                 f"device '{first['provenance']['device']}', second run {'identical' if same else 'DIFFERS'}",
                 time.perf_counter() - start, {"accuracy": first["metrics"].get("accuracy"), "identical": same})


def run_pytest(device: torch.device, nodes: tuple[str, ...] = PYTEST_NODES, timeout_s: float = 120.0) -> Check:
    """The node ids under pytest on `device` (KDUTILS_DEVICE), if pytest is importable; reported, not fatal."""
    start = time.perf_counter()
    if importlib.util.find_spec("pytest") is None:
        return Check("pytest node ids", True, "skipped: pytest is not installed here (the plain checks ran)")
    env = {**os.environ, "KDUTILS_DEVICE": device.type, "KDUTILS_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *nodes]
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Check("pytest node ids", False, f"timed out after {timeout_s:.0f} s", time.perf_counter() - start)
    tail = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return Check(f"pytest: {len(nodes)} node ids on {device.type}", proc.returncode == 0, tail,
                 time.perf_counter() - start, {"returncode": proc.returncode, "output": proc.stdout[-4000:]})


def run_checks(device: torch.device, pytest_nodes: bool = True) -> list[Check]:
    checks = [check_fit_learns(device), *check_engines(device), check_runner_records(device)]
    if pytest_nodes:
        checks.append(run_pytest(device))
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]


__all__ = ["Check", "PYTEST_NODES", "SEPARATION", "TOLERANCE", "as_dicts", "check_engines", "check_fit_learns",
           "check_runner_records", "run_checks", "run_pytest"]
