"""Run a `RunConfig` end to end, or load it: data -> (teacher) -> train -> evaluate -> record.

`run(cfg)` returns the stored record if the exact config already finished, so notebooks can ask for every
run they show and only the missing ones train. Teachers are trained once per config and reused from their
checkpoint by every student that names them.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import data as data_mod
from .config import DataConfig, RunConfig, config_hash
from .device_loader import DeviceLoader, parse_augment
from .metrics import classification_metrics, invariance_metric, predict_logits
from .models import build_model
from .provenance import provenance
from .splits import kfold_indices, train_val_split
from .store import ResultStore
from .train import FitResult, fit, freeze

# name -> function(x, generator) -> transformed x; filled by the chapters that measure invariance (IM).
INVARIANCE_TRANSFORMS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {}


def default_device() -> torch.device:
    """$KDUTILS_DEVICE, else CUDA when available, else CPU."""
    env = os.environ.get("KDUTILS_DEVICE")
    if env:
        return torch.device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Splits:
    train: data_mod.ArrayDataset
    val: data_mod.ArrayDataset | None
    test: data_mod.ArrayDataset
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.train.classes) or int(self.train.y.max()) + 1


@lru_cache(maxsize=8)
def _load(name: str, split: str, options: tuple) -> data_mod.ArrayDataset:
    return data_mod.load_dataset(name, split=split, **dict(options))


def prepare_data(cfg: DataConfig) -> Splits:
    """Apply fold, validation hold-out and subsetting, in that order, all seeded by `split_seed`."""
    options = tuple(sorted(cfg.options.items()))
    train, test = _load(cfg.dataset, "train", options), _load(cfg.dataset, "test", options)
    val = None
    if cfg.fold is not None:
        train_idx, held_idx = kfold_indices(len(train), cfg.k_folds, cfg.fold, cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(held_idx)
    elif cfg.val_size:
        train_idx, val_idx = train_val_split(len(train), cfg.val_size, cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(val_idx)
    if cfg.n_train is not None and cfg.n_train < len(train):
        train = train.subset(_seeded_subset(len(train), cfg.n_train, cfg.split_seed))
    if cfg.n_test is not None and cfg.n_test < len(test):
        test = test.subset(_seeded_subset(len(test), cfg.n_test, cfg.split_seed + 1))
    mean, std = data_mod.NORMALIZATION.get(cfg.dataset, (None, None))
    return Splits(train, val, test, mean, std)


def _seeded_subset(n: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:k].sort().values


def build_for(cfg: RunConfig, splits: Splits) -> nn.Module:
    return build_model(cfg.model, splits.in_shape, splits.num_classes, **cfg.model_kwargs)


def load_model(cfg: RunConfig, store: ResultStore | None = None, device: torch.device | None = None,
               progress: bool = True) -> nn.Module:
    """The trained model of `cfg`: from its checkpoint, or trained now (and checkpointed) if there is none."""
    store = store or ResultStore()
    device = device or default_device()
    ckpt = store.checkpoint_path(cfg)
    if not ckpt.exists():
        run(cfg, store, force=store.get(cfg) is not None, device=device, progress=progress)
    splits = prepare_data(cfg.data)
    model = build_for(cfg, splits)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    return model.to(device)


_LOGIT_CACHE: dict[tuple[str, str, str], torch.Tensor] = {}


def teacher_logits_for(teacher_cfg: RunConfig, teacher: nn.Module, data_cfg: DataConfig, split: str,
                       x: torch.Tensor, splits: Splits, device: torch.device) -> torch.Tensor:
    """The teacher's logits on a fixed input set, computed once and reused (memory, then disk cache)."""
    key = (teacher_cfg.key(), config_hash({"data": data_cfg.__dict__}), split)
    if key not in _LOGIT_CACHE:
        from .paths import cache_dir

        path = cache_dir() / "logits" / f"{key[0]}-{key[1]}-{split}.pt"
        if path.exists():
            _LOGIT_CACHE[key] = torch.load(path, weights_only=True)
        else:
            logits = predict_logits(teacher, x, device=device, mean=splits.mean, std=splits.std)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(logits, path)
            _LOGIT_CACHE[key] = logits
    return _LOGIT_CACHE[key]


def run(cfg: RunConfig, store: ResultStore | None = None, *, force: bool = False,
        device: torch.device | None = None, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate `cfg` unless its record exists; return the record."""
    store = store or ResultStore()
    if not force and (record := store.get(cfg)) is not None:
        return record
    device = device or default_device()
    splits = prepare_data(cfg.data)
    teacher = None
    if cfg.teacher is not None:
        teacher = freeze(load_model(cfg.teacher, store, device, progress))

    seed_everything(cfg.seed)
    model = build_for(cfg, splits)
    augment = parse_augment(cfg.train.augment)
    loader = DeviceLoader(splits.train.x, splits.train.y, cfg.train.batch_size, shuffle=True, augment=augment,
                          mean=splits.mean, std=splits.std, device=device, seed=cfg.seed)
    cached = None
    if teacher is not None and cfg.alpha > 0 and augment is None:
        cached = teacher_logits_for(cfg.teacher, teacher, cfg.data, "train", splits.train.x, splits, device)
    started = time.perf_counter()
    result = fit(model, loader, cfg.train, teacher=None if cached is not None else teacher, teacher_logits=cached,
                 tau=cfg.tau, alpha=cfg.alpha, kd_direction=cfg.kd_direction,
                 label_smoothing=cfg.label_smoothing, device=device, progress=progress,
                 desc=f"{cfg.experiment}/{cfg.role}")
    return record_run(cfg, model, teacher, splits, result, store, device, started)


def record_run(cfg: RunConfig, model: nn.Module, teacher: nn.Module | None, splits: Splits, result: FitResult,
               store: ResultStore, device: torch.device, started: float, train_share_s: float = 0.0,
               **extra: Any) -> dict[str, Any]:
    """Evaluate a trained model, checkpoint it and write its record (wall time counted from `started`,
    plus `train_share_s` for work shared with other runs)."""
    metrics = evaluate(cfg, model, teacher, splits, device) if result.status == "ok" else {}
    ckpt = store.checkpoint_path(cfg)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, ckpt)
    record = {
        "status": result.status,
        "message": result.message,
        "metrics": metrics,
        "history": result.history,
        "epochs_run": result.epochs_run,
        "n_train": len(splits.train),
        "n_test": len(splits.test),
        "wall_time_s": round(train_share_s + time.perf_counter() - started, 3),
        "provenance": provenance(device),
        **extra,
    }
    return store.put(cfg, record)


def evaluate(cfg: RunConfig, model: nn.Module, teacher: nn.Module | None, splits: Splits,
             device: torch.device) -> dict[str, float]:
    """Whole-test-set metrics; agreement/KL against the teacher; IM when the config names a transformation."""
    logits = predict_logits(model, splits.test.x, device=device, mean=splits.mean, std=splits.std)
    t_logits = None
    if teacher is not None:
        t_logits = teacher_logits_for(cfg.teacher, teacher, cfg.data, "test", splits.test.x, splits, device)
    metrics = classification_metrics(logits, splits.test.y, teacher_logits=t_logits)
    if cfg.invariance:
        if cfg.invariance not in INVARIANCE_TRANSFORMS:
            raise ValueError(f"unknown invariance transformation {cfg.invariance!r}; "
                             f"choose one of: {', '.join(sorted(INVARIANCE_TRANSFORMS))}")
        gen = torch.Generator().manual_seed(1234)
        x_t = INVARIANCE_TRANSFORMS[cfg.invariance](splits.test.x, gen)
        logits_t = predict_logits(model, x_t, device=device, mean=splits.mean, std=splits.std)
        p, p_t = logits.softmax(1), logits_t.softmax(1)
        metrics["im_l1"] = float(invariance_metric(p, p_t, norm="l1"))
        metrics["im_l2"] = float(invariance_metric(p, p_t, norm="l2"))
        from .metrics import flip_rate  # top-1 changes under the same transformation (does not move with confidence)

        metrics["flip_rate"] = float(flip_rate(logits, logits_t))
    if splits.val is not None:  # val_* metrics: what hyperparameter selection reads (kdutils.tuning), never test
        v_logits = predict_logits(model, splits.val.x, device=device, mean=splits.mean, std=splits.std)
        metrics.update({f"val_{k}": v for k, v in classification_metrics(v_logits, splits.val.y).items()})
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in metrics.items()}
