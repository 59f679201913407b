"""Time the first epoch of each architecture a chapter trains, on the device the chapter will run on.

Why not the whole first epoch: on the GPU it is seconds, but the same code runs the CI test on a CPU and the dry
run anywhere, so the probe times at most `max_steps` steps of a `train.fit` epoch (after a short warm-up that
pays for CUDA's lazy initialisation and cuDNN's autotuning) and scales to the epoch, and times what every
recorded run pays once beside its epochs (model, data on the device, evaluation, checkpoint).
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from kdutils.config import TrainConfig
from kdutils.data.device_loader import DeviceLoader
from kdutils.metrics import predict_logits
from kdutils.models import build_model
from kdutils.training.runner import prepare_data
from kdutils.training.train import fit
from kdutils.gpu.workload import Timing, Work, steps_per_epoch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(device: torch.device, fn: Callable[[], object], clock: Callable[[], float]) -> float:
    _sync(device)
    start = clock()
    fn()
    _sync(device)
    return clock() - start


def probe(work: Work, device: torch.device, *, max_steps: int = 30, warmup_steps: int = 3,
          clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Seconds per epoch of `work`'s architecture on its data and batch size, and per test-set evaluation."""
    splits = prepare_data(work.data)
    n = len(splits.train)
    b = work.batch_size
    steps = min(max_steps, steps_per_epoch(n, b))
    torch.manual_seed(0)
    model = build_model(work.model, splits.in_shape, splits.num_classes, **dict(work.model_kwargs)).to(device)
    cfg = TrainConfig(epochs=1, batch_size=b, lr=1e-3, momentum=0.9)
    x, y = splits.train.x, splits.train.y

    def loader(count: int) -> DeviceLoader:
        return DeviceLoader(x[:count * b], y[:count * b], b, mean=splits.mean, std=splits.std, device=device)

    fit(model, loader(min(warmup_steps, steps)), cfg, device=device, progress=False)
    timed = loader(steps)
    step_s = _seconds(device, lambda: fit(model, timed, cfg, device=device, progress=False), clock) / len(timed)
    return Timing(epoch_s=step_s * steps_per_epoch(n, b), run_s=_run_overhead(work, splits, device, clock))


def _run_overhead(work: Work, splits, device: torch.device, clock: Callable[[], float]) -> float:
    """What one recorded run costs beside its epochs: a fresh model on the device, the training split on the
    device, the test (and validation) split evaluated, the checkpoint written."""
    import io

    def once() -> None:
        torch.manual_seed(0)
        model = build_model(work.model, splits.in_shape, splits.num_classes, **dict(work.model_kwargs)).to(device)
        DeviceLoader(splits.train.x, splits.train.y, work.batch_size, mean=splits.mean, std=splits.std,
                     device=device)
        for part in (splits.test, splits.val):
            if part is not None:
                predict_logits(model, part.x, device=device, mean=splits.mean, std=splits.std)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, io.BytesIO())

    return _seconds(device, once, clock)


__all__ = ["probe"]
