"""Cross-fitted (out-of-fold) teachers: the student's training images are cut into k folds, teacher f is trained
on the other folds, and each image's teacher logits come from the teacher that never saw it.

Why: a teacher's logits on its own training images are nearly the labels (the first recipe's ResNet-8 was
96.9% right on them), so KD had almost nothing to add and "teacher wrong" groups were tiny. Out-of-fold logits
are what the teacher predicts on images it has not fitted: its errors and soft classes there are the ones it
makes on new images, which is the knowledge KD is meant to pass on. It is a stated deviation from the paper
(one teacher trained on the student's whole training set).

A part's config is the fold-0 teacher's RunConfig with role `cf_teacher{f}of{k}`; the part's data is the
student's DataConfig (same split, same validation hold-out), cut by `kdutils.data.splits.kfold_indices`
seeded by its `split_seed`. Validation and test logits (f_w's held-out evidence, the motivation groups on
held-out images, the teacher-agreement metric's test logits aside) are the mean of the k teachers' logits:
no part saw those images either.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, TypedDict

import torch

from kdutils.config import RunConfig
from kdutils.data.device_loader import DeviceLoader, parse_augment
from kdutils.data.splits import kfold_indices
from kdutils.metrics import predict_logits
from kdutils.store.io import DamagedFileError, load_tensors
from kdutils.store.store import ResultStore
from kdutils.training import runner
from kdutils.training.train import fit, freeze

__all__ = ["CrossFitLogits", "crossfit_logits", "is_part", "load_part", "part_configs", "part_indices",
           "part_of", "part_role", "run_part"]

_ROLE = re.compile(r"^cf_teacher(\d+)of(\d+)$")


def part_role(part: int, k: int) -> str:
    if not (isinstance(k, int) and k >= 2 and isinstance(part, int) and 0 <= part < k):
        raise ValueError(f"need 0 <= part < k with k >= 2, got part={part!r}, k={k!r}")
    return f"cf_teacher{part}of{k}"


def part_of(cfg: RunConfig) -> tuple[int, int]:
    """(part, k) of a cross-fitted teacher's config."""
    m = _ROLE.match(cfg.role)
    if not m:
        raise ValueError(f"role {cfg.role!r} is not a cross-fitted teacher's (cf_teacher<part>of<k>)")
    return int(m.group(1)), int(m.group(2))


def is_part(cfg: RunConfig | None) -> bool:
    return cfg is not None and bool(_ROLE.match(cfg.role))


def part_configs(teacher0: RunConfig) -> list[RunConfig]:
    """All k parts, from any one of them."""
    _, k = part_of(teacher0)
    return [teacher0.with_(role=part_role(f, k)) for f in range(k)]


def part_indices(n: int, cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices the part trains on, indices it predicts out of fold) within the student's training split."""
    part, k = part_of(cfg)
    return kfold_indices(n, k, part, cfg.data.split_seed)



def fit_on_subset(cfg: RunConfig, sub: "runner.Splits", device, progress: bool):
    """Train `cfg`'s model on `sub.train` only (a teacher that must not see some images): the one training step
    shared by the cross-fitted parts and the held-out teacher. Returns (model, fit result, start time)."""
    runner.seed_everything(cfg.seed)
    model = runner.build_for(cfg, sub)
    loader = DeviceLoader(sub.train.x, sub.train.y, cfg.train.batch_size, shuffle=True,
                          augment=parse_augment(cfg.train.augment), mean=sub.mean, std=sub.std, device=device,
                          seed=cfg.seed)
    started = time.perf_counter()
    result = fit(model, loader, cfg.train, device=device, progress=progress, desc=f"{cfg.experiment}/{cfg.role}")
    return model, result, started


def subset_accuracy(model: torch.nn.Module, train, sub: "runner.Splits", idx: torch.Tensor, device) -> float:
    """Accuracy of `model` on the training images at positions `idx` (normalised with `sub`'s statistics)."""
    logits = predict_logits(model, train.x[idx], device=device, mean=sub.mean, std=sub.std)
    return float((logits.argmax(1) == train.y[idx]).double().mean())

def run_part(cfg: RunConfig, store: ResultStore | None = None, *, device: torch.device | None = None,
             progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Train one part on its folds (unless recorded) and record it; the record adds its accuracy on the fold it
    predicts out of fold ("crossfit.oof_accuracy") and on its own training folds."""
    store = store or ResultStore()
    if not force and (rec := store.get(cfg)) is not None:
        return rec
    if runner.load_only() and not force:
        raise runner.missing_run_error(cfg, store)
    with runner.sole_writer(cfg, store, force) as done:  # one writer per part; a second one loads its record
        if done is not None:
            return done
        device = device or runner.default_device()
        splits = runner.prepare_data(cfg.data)
        fit_idx, held_idx = part_indices(len(splits.train), cfg)
        sub = runner.Splits(splits.train.subset(fit_idx), splits.val, splits.test, splits.mean, splits.std)
        model, result, started = fit_on_subset(cfg, sub, device, progress)
        extra: dict[str, Any] = {}
        if result.status == "ok":
            acc = lambda idx: subset_accuracy(model, splits.train, sub, idx, device)  # noqa: E731
            extra["crossfit"] = {"part": part_of(cfg)[0], "k": part_of(cfg)[1], "n_fit": int(fit_idx.numel()),
                                 "n_oof": int(held_idx.numel()), "oof_accuracy": acc(held_idx),
                                 "fit_accuracy": acc(fit_idx)}
        return runner.record_run(cfg, model, None, sub, result, store, device, started, **extra)


def load_or_train(cfg: RunConfig, store: ResultStore, device: torch.device, train: Callable[..., Any],
                  progress: bool = True):
    """A trained teacher (frozen) from its checkpoint; with none, or a damaged one, `train(cfg, store, device=,
    progress=, force=)` trains it again (forced where the record exists but the checkpoint does not)."""
    ckpt = store.checkpoint_path(cfg)
    state = None
    if ckpt.exists():
        try:
            state = load_tensors(ckpt)
        except DamagedFileError:
            state = None
    if state is None:
        train(cfg, store, device=device, progress=progress, force=store.get(cfg) is not None)
        state = load_tensors(ckpt)
    model = runner.build_for(cfg, runner.prepare_data(cfg.data))
    model.load_state_dict(state)
    return freeze(model.to(device))


def load_part(cfg: RunConfig, store: ResultStore, device: torch.device, progress: bool = True):
    """The trained part (frozen), from its checkpoint or trained now."""
    return load_or_train(cfg, store, device, run_part, progress)


@dataclass
class CrossFitLogits:
    """Out-of-fold logits on the training split; the parts' mean on the validation and test splits; the parts."""

    train: torch.Tensor
    val: torch.Tensor | None
    test: torch.Tensor
    teachers: list


_CACHE: dict[tuple[str, str], CrossFitLogits] = {}


class _PredictKwargs(TypedDict):
    """The keyword arguments `crossfit_logits` gives every `predict_logits` call."""

    device: torch.device
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


def crossfit_logits(teacher0: RunConfig, store: ResultStore, device: torch.device, progress: bool = True
                    ) -> CrossFitLogits:
    """The out-of-fold logits of the student's training split (cached in memory per process)."""
    key = (teacher0.key(), str(store.root))
    if key in _CACHE:
        return _CACHE[key]
    splits = runner.prepare_data(teacher0.data)
    kw: _PredictKwargs = dict(device=device, mean=splits.mean, std=splits.std)
    parts = part_configs(teacher0)
    models = [load_part(c, store, device, progress) for c in parts]
    train = None
    val, test = [], []
    for c, m in zip(parts, models):
        _, held = part_indices(len(splits.train), c)
        lg = predict_logits(m, splits.train.x[held], **kw)
        if train is None:
            train = torch.zeros(len(splits.train), lg.shape[1], dtype=lg.dtype)
        train[held] = lg
        test.append(predict_logits(m, splits.test.x, **kw))
        if splits.val is not None:
            val.append(predict_logits(m, splits.val.x, **kw))
    assert train is not None  # part_configs gives k >= 2 parts (part_role checks k), and the first part set it
    out = CrossFitLogits(train, torch.stack(val).mean(0) if val else None, torch.stack(test).mean(0), models)
    _CACHE[key] = out
    return out
