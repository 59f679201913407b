"""Run a `RunConfig` end to end, or load it: data -> (teacher) -> train -> evaluate -> record.

`run(cfg)` returns the stored record if the exact config already finished, so notebooks can ask for every
run they show and only the missing ones train. Teachers are trained once per config and reused from their
checkpoint by every student that names them.

Load-only mode: with `KDUTILS_LOAD_ONLY=1` (the book build sets it) a missing run is never trained: `run`,
`load_model` and `group_runner.run_grouped` raise `MissingRunError`, whose message says how to produce it.

Failures are results: a run that diverged is recorded "diverged" (by the training loop), one whose test
accuracy is at chance level "chance" (`chance_status`, here, because it needs the evaluation). A damaged
checkpoint, teacher-logit or data (point-set) cache is reported with its path and rebuilt, and the record
says so (`"recovered"`, via `kdutils.store.recovery`).

One writer per run: training a run holds its lock (`kdutils.store.locks`), so a second process asking for the same
run waits and then loads the record instead of training it again; the results and cache folders are checked
writable before anything trains.
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from kdutils.config import DataConfig, RunConfig, config_hash
from kdutils.data import datasets as data_mod, registry
from kdutils.data.device_loader import DeviceLoader, parse_augment
from kdutils.data.splits import kfold_indices, train_val_split
from kdutils.data.symmetry import TRANSFORMATIONS
from kdutils.metrics import classification_metrics, flip_rate, invariance_metric, predict_logits
from kdutils.models import build_model
from kdutils.store import locks
from kdutils.store.io import DamagedFileError, atomic_torch_save, load_tensors
from kdutils.store.provenance import provenance
from kdutils.store.recovery import collecting, rebuilt
from kdutils.store.store import ResultStore
from kdutils.training.train import FitResult, fit, freeze

#: `DataConfig.options` keys the runner applies itself (the other options go to the dataset loader):
#: "train_classes": the labels kept in the training split (a transfer set without some classes; the held-out
#: validation split and the test set keep every class, and the record gets a bias-shift curve for the
#: classes left out, see `bias_shift_record`); "epoch_eval": k, evaluate validation and test errors every k
#: epochs and after the last one into the record's `history` (a learning curve, for convergence checks).
RUN_OPTIONS = ("train_classes", "epoch_eval")
#: Shifts added to the left-out classes' logits for the bias-shift curve (0 to 40 in steps of 0.1).
BIAS_SHIFTS = tuple(round(0.1 * i, 1) for i in range(401))

#: A run is at chance level when its test accuracy closes less than this share of the gap between always
#: predicting the most frequent test class and a perfect score (see `chance_status`).
CHANCE_MARGIN = 0.05


class MissingRunError(RuntimeError):
    """Load-only mode (KDUTILS_LOAD_ONLY=1) met a run that has no record (or no checkpoint)."""


def load_only() -> bool:
    """True when $KDUTILS_LOAD_ONLY asks never to train (the book build): "1", "true" or "yes"."""
    return os.environ.get("KDUTILS_LOAD_ONLY", "").strip().lower() in ("1", "true", "yes")


def missing_run_error(cfg: RunConfig, store: ResultStore, what: str = "record") -> MissingRunError:
    """The error for a run that load-only mode will not train, saying which run and how to produce it."""
    path = store.path(cfg) if what == "record" else store.checkpoint_path(cfg)
    damaged = store.damaged(cfg.experiment).get(store.path(cfg))
    note = f" (the record file exists but is damaged: {damaged})" if damaged else ""
    chapter = cfg.experiment.split("_")[0]
    return MissingRunError(
        f"no {what} for experiment {cfg.experiment!r}, role {cfg.role!r}, config key {cfg.key()} "
        f"(profile {cfg.profile!r}) at {path}{note}, and KDUTILS_LOAD_ONLY=1 forbids training it here. "
        f"Produce it with `python -m kdutils run {chapter} --profile {cfg.profile}` (or the chapter's "
        f"`python -m kdutils sweep notebooks/<notebook>.ipynb -p NAME VALUES --profile {cfg.profile}`), "
        "then commit the new records in results/; or unset KDUTILS_LOAD_ONLY to train it now.")


def chance_status(accuracy: float, y_test: torch.Tensor, num_classes: int) -> tuple[bool, str]:
    """Is a run's test accuracy at chance level? (at_chance, message).

    The floor is the better of 1/C and the most frequent test class's share (what a constant predictor
    scores); the run is at chance if it closes less than CHANCE_MARGIN (5%) of the gap between that floor and
    1. For balanced 10-class MNIST that is accuracy <= 0.1 + 0.05 * 0.9 ~ 0.145 (close to the 1.5/C rule of
    thumb), and for a balanced binary task <= 0.525, where 1.5/C would wrongly flag a 70%-accurate model."""
    counts = torch.bincount(y_test.long().flatten(), minlength=num_classes)
    floor = max(1.0 / num_classes, float(counts.max()) / max(int(counts.sum()), 1))
    threshold = floor + CHANCE_MARGIN * (1.0 - floor)
    at_chance = accuracy <= threshold
    return at_chance, (f"test accuracy {accuracy:.4f} is at chance level (<= {threshold:.4f}: a constant "
                       f"prediction of the most frequent class scores {floor:.4f})") if at_chance else ""


#: name -> function(x, generator) -> transformed x: the transformations a RunConfig's `invariance` field may name
#: (the table is `kdutils.data.symmetry.TRANSFORMATIONS`, complete at import; a test may add its own entry).
INVARIANCE_TRANSFORMS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    name: t.fn for name, t in TRANSFORMATIONS.items()}


def default_device() -> torch.device:
    """$KDUTILS_DEVICE, else CUDA when available, else CPU. A value torch does not know, or a device this
    machine does not have, is a ValueError naming the variable (not torch's traceback mid-run)."""
    env = os.environ.get("KDUTILS_DEVICE")
    if not env:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    allowed = "cpu, cuda, cuda:N or mps (or unset it: CUDA when available, else CPU)"
    try:
        device = torch.device(env)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"KDUTILS_DEVICE={env!r} is not a torch device; use {allowed}") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"KDUTILS_DEVICE={env!r}: this machine has no {device.type} device; use {allowed}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"KDUTILS_DEVICE={env!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                         f"use {allowed}")
    return device


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
def load_split(name: str, split: str, options: tuple = ()) -> data_mod.ArrayDataset:
    """One split of a registered dataset, kept in memory for the process (a sweep loads it once)."""
    return registry.load_dataset(name, split=split, **dict(options))


def loader_options(cfg: DataConfig) -> tuple:
    """The options that go to the dataset loader: all but the runner's own (`RUN_OPTIONS`)."""
    return tuple(sorted((k, v) for k, v in cfg.options.items() if k not in RUN_OPTIONS))


def train_classes(cfg: DataConfig) -> tuple[int, ...] | None:
    """The labels the training split keeps (`options["train_classes"]`), or None for all of them."""
    kept = cfg.options.get("train_classes")
    if kept is None:
        return None
    if not isinstance(kept, (list, tuple)) or not kept or any(
            isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in kept):
        raise ValueError(f"options['train_classes'] must be a non-empty list of labels (ints >= 0), got {kept!r}")
    return tuple(sorted(set(kept)))


def eval_every(cfg: DataConfig) -> int | None:
    """Epochs between learning-curve evaluations (`options["epoch_eval"]`), or None for no curve."""
    k = cfg.options.get("epoch_eval")
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"options['epoch_eval'] must be an integer >= 1 (epochs between evaluations), got {k!r}")
    return k


def prepare_data(cfg: DataConfig) -> Splits:
    """Apply fold, validation hold-out, the training-class filter and subsetting, in that order, all seeded by
    `split_seed`."""
    options = loader_options(cfg)
    train, test = load_split(cfg.dataset, "train", options), load_split(cfg.dataset, "test", options)
    val = None
    if cfg.fold is not None:
        train_idx, held_idx = kfold_indices(len(train), cfg.k_folds, cfg.fold, cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(held_idx)
    elif cfg.val_size:
        train_idx, val_idx = train_val_split(len(train), cfg.val_size, cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(val_idx)
    kept = train_classes(cfg)
    if kept is not None:
        n_classes = len(train.classes) or int(train.y.max()) + 1
        if max(kept) >= n_classes:
            raise ValueError(f"options['train_classes'] names label {max(kept)}, but {cfg.dataset} has labels "
                             f"0..{n_classes - 1}")
        train = train.subset(torch.nonzero(torch.isin(train.y, torch.tensor(kept))).flatten())
    if cfg.n_train is not None and cfg.n_train < len(train):
        train = train.subset(seeded_subset(len(train), cfg.n_train, cfg.split_seed))
    if cfg.n_test is not None and cfg.n_test < len(test):
        test = test.subset(seeded_subset(len(test), cfg.n_test, cfg.split_seed + 1))
    mean, std = data_mod.NORMALIZATION.get(cfg.dataset, (None, None))
    return Splits(train, val, test, mean, std)


def seeded_subset(n: int, k: int, seed: int) -> torch.Tensor:
    """k of n indices, drawn without replacement from `seed` and sorted (the same seed gives the same subset)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:k].sort().values


def build_for(cfg: RunConfig, splits: Splits) -> nn.Module:
    return build_model(cfg.model, splits.in_shape, splits.num_classes, **cfg.model_kwargs)


def _damaged(path, err: Exception, action: str, notes: list[str] | None) -> None:
    """Report a damaged cache file (warning + a note for the record) before it is rebuilt."""
    rebuilt(path, err, action, notes, stacklevel=4)


def load_model(cfg: RunConfig, store: ResultStore | None = None, device: torch.device | None = None,
               progress: bool = True, notes: list[str] | None = None) -> nn.Module:
    """The trained model of `cfg`: from its checkpoint, or trained now (and checkpointed) if there is none
    or it is damaged (reported, and noted in `notes` and in the retrained run's record)."""
    store = store or ResultStore()
    device = device or default_device()
    state = _checkpoint_state(cfg, store)
    if state is None:  # missing or damaged: rebuilt by one process, the others wait for it and load it
        if load_only():
            try:
                load_tensors(store.checkpoint_path(cfg))
            except FileNotFoundError:
                raise missing_run_error(cfg, store, "checkpoint") from None
            except DamagedFileError as err:
                raise missing_run_error(cfg, store, "usable checkpoint") from err
        store.check_writable()
        with locks.hold([store.lock_path(cfg)]):
            state = _checkpoint_state(cfg, store)
            if state is None:
                state = _rebuild_checkpoint(cfg, store, device, progress, notes)
    splits = prepare_data(cfg.data)
    model = build_for(cfg, splits)
    model.load_state_dict(state)
    return model.to(device)


def _checkpoint_state(cfg: RunConfig, store: ResultStore) -> dict[str, torch.Tensor] | None:
    """The checkpoint's weights, or None if it is missing or damaged (checked again under the lock)."""
    try:
        return load_tensors(store.checkpoint_path(cfg))
    except (FileNotFoundError, DamagedFileError):
        return None


def _rebuild_checkpoint(cfg: RunConfig, store: ResultStore, device: torch.device, progress: bool,
                        notes: list[str] | None) -> dict[str, torch.Tensor]:
    """Train `cfg` again to make its checkpoint (a damaged one is reported and noted first)."""
    ckpt = store.checkpoint_path(cfg)
    own: list[str] = []
    if ckpt.exists():
        try:
            load_tensors(ckpt)
        except DamagedFileError as err:
            _damaged(ckpt, err, f"retraining {cfg.experiment}/{cfg.role} ({cfg.key()}) to rebuild it", own)
            if notes is not None:
                notes.extend(n for n in own if n not in notes)
            run(cfg, store, force=True, device=device, progress=progress, notes=own)
            return load_tensors(ckpt)
    run(cfg, store, force=store.get(cfg) is not None, device=device, progress=progress)
    return load_tensors(ckpt)


_LOGIT_CACHE: dict[tuple[str, str, str], torch.Tensor] = {}


def teacher_logits_for(teacher_cfg: RunConfig, teacher: nn.Module, data_cfg: DataConfig, split: str,
                       x: torch.Tensor, splits: Splits, device: torch.device,
                       notes: list[str] | None = None) -> torch.Tensor:
    """The teacher's logits on a fixed input set, computed once and reused (memory, then disk cache).

    The disk cache is written atomically; a damaged cache file is reported (warning, and a line in `notes`
    for the run's record) and recomputed."""
    key = (teacher_cfg.key(), config_hash({"data": data_cfg.__dict__}), split)
    if key not in _LOGIT_CACHE:
        from kdutils.paths import cache_dir

        path = cache_dir() / "logits" / f"{key[0]}-{key[1]}-{split}.pt"
        logits = None
        if path.exists():
            try:
                logits = load_tensors(path)
                if not isinstance(logits, torch.Tensor) or logits.shape[0] != x.shape[0]:
                    raise DamagedFileError(f"{path}: damaged file (expected a tensor of {x.shape[0]} rows, "
                                           f"got {getattr(logits, 'shape', type(logits).__name__)})")
            except DamagedFileError as err:
                _damaged(path, err, "recomputing the teacher's logits", notes)
                logits = None
        if logits is None:
            logits = predict_logits(teacher, x, device=device, mean=splits.mean, std=splits.std)
            atomic_torch_save(logits, path)
        _LOGIT_CACHE[key] = logits
    return _LOGIT_CACHE[key]


def run(cfg: RunConfig, store: ResultStore | None = None, *, force: bool = False,
        device: torch.device | None = None, progress: bool = True, notes: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate `cfg` unless its record exists; return the record.

    notes: lines for the record's "recovered" field (damaged cache files rebuilt on the way). In load-only
    mode a missing record raises `MissingRunError` (`force` still retrains)."""
    store = store or ResultStore()
    if not force and (record := store.get(cfg)) is not None:
        return record
    if load_only() and not force:
        raise missing_run_error(cfg, store)
    with sole_writer(cfg, store, force) as done:  # one writer per run; a second one waits, then loads
        if done is not None:
            return done
        notes = [] if notes is None else notes
        with collecting(notes):  # a data cache rebuilt on the way is noted in this record
            return _train_and_record(cfg, store, device or default_device(), progress, notes)


@contextmanager
def sole_writer(cfg: Any, store: ResultStore, force: bool = False) -> Iterator[dict[str, Any] | None]:
    """Be the only process producing `cfg`'s record for the block: check the results and cache folders
    writable (before any training), then hold its run lock (`kdutils.store.locks`), waiting while another process
    holds it. Yields the record that process wrote meanwhile, to be returned instead of training (None: train;
    always None with `force`). Every function that trains and records a run takes it (`cfg` is anything with
    `experiment` and `key()`)."""
    store.check_writable()
    with locks.hold([store.lock_path(cfg)]):
        yield None if force else store.get(cfg)


def _train_and_record(cfg: RunConfig, store: ResultStore, device: torch.device, progress: bool,
                      notes: list[str]) -> dict[str, Any]:
    """`run`'s work once it holds the run's lock: data, teacher, training, evaluation, record."""
    splits = prepare_data(cfg.data)
    teacher = None
    if cfg.teacher is not None:
        teacher = freeze(load_model(cfg.teacher, store, device, progress, notes))

    seed_everything(cfg.seed)
    model = build_for(cfg, splits)
    augment = parse_augment(cfg.train.augment)
    loader = DeviceLoader(splits.train.x, splits.train.y, cfg.train.batch_size, shuffle=True, augment=augment,
                          mean=splits.mean, std=splits.std, device=device, seed=cfg.seed)
    cached = None
    if cfg.teacher is not None and teacher is not None and cfg.alpha > 0 and augment is None:
        cached = teacher_logits_for(cfg.teacher, teacher, cfg.data, "train", splits.train.x, splits, device, notes)
    every = eval_every(cfg.data)
    snap_every = snapshot_every()
    snap = snapshot_path(cfg) if snap_every else None
    started = time.perf_counter()
    result = fit(model, loader, cfg.train, teacher=None if cached is not None else teacher, teacher_logits=cached,
                 tau=cfg.tau, alpha=cfg.alpha, kd_direction=cfg.kd_direction,
                 label_smoothing=cfg.label_smoothing, device=device, progress=progress,
                 desc=f"{cfg.experiment}/{cfg.role}",
                 epoch_eval=None if every is None else curve_evaluator(splits, device), eval_every=every or 1,
                 snapshot=snap, snapshot_every=snap_every)
    extra = {"resumed": {"from_epoch": result.resumed_from, "earlier_training_s": round(result.prior_time_s, 3)}} \
        if result.resumed_from else {}
    record = record_run(cfg, model, teacher, splits, result, store, device, started,
                        train_share_s=result.prior_time_s, notes=notes, **extra)
    if snap is not None:
        snap.unlink(missing_ok=True)
    return record


def snapshot_every() -> int:
    """$KDUTILS_SNAPSHOT_EVERY: epochs between training snapshots of single runs (unset or 0: none). A runtime
    setting, not part of a run's config: a resumed run trains exactly as an uninterrupted one."""
    raw = os.environ.get("KDUTILS_SNAPSHOT_EVERY", "").strip() or "0"
    if not raw.isdigit():
        raise ValueError(f"KDUTILS_SNAPSHOT_EVERY must be a whole number of epochs (0: off), got {raw!r}")
    return int(raw)


def snapshot_path(cfg: RunConfig):
    """Where a run's training snapshot lives (in the cache, never committed)."""
    from kdutils.paths import cache_dir

    return cache_dir() / "snapshots" / f"{cfg.experiment}-{cfg.key()}.pt"


def curve_evaluator(splits: Splits, device: torch.device) -> Callable[[nn.Module], dict[str, float]]:
    """The learning-curve evaluation of `options["epoch_eval"]`: test errors, and validation errors when the run
    holds a validation split out."""
    from kdutils.metrics import error_count

    def evaluate_now(model: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        out["test_errors"] = error_count(predict_logits(model, splits.test.x, device=device, mean=splits.mean,
                                                        std=splits.std), splits.test.y)
        if splits.val is not None:
            out["val_errors"] = error_count(predict_logits(model, splits.val.x, device=device, mean=splits.mean,
                                                           std=splits.std), splits.val.y)
        return out

    return evaluate_now


def bias_shift_record(cfg: RunConfig, model: nn.Module, splits: Splits, device: torch.device) -> dict[str, Any]:
    """Errors vs a bias shift on the classes missing from the training split (see `RUN_OPTIONS`), on the
    validation split (where a shift may be chosen) and on the test set, for every shift in `BIAS_SHIFTS`."""
    from kdutils.metrics import bias_shift_errors

    kept = train_classes(cfg.data) or ()
    left_out = [c for c in range(splits.num_classes) if c not in kept]
    out: dict[str, Any] = {"classes": left_out, "shifts": list(BIAS_SHIFTS)}
    for name, part in (("val", splits.val), ("test", splits.test)):
        if part is not None and left_out:
            logits = predict_logits(model, part.x, device=device, mean=splits.mean, std=splits.std)
            out[name] = bias_shift_errors(logits, part.y, left_out, BIAS_SHIFTS)
    return out


def final_status(result: FitResult, metrics: dict[str, float], splits: Splits) -> tuple[str, str]:
    """The record's status and message: the training loop's ("ok" or "diverged"), turned into "chance" when
    a run that trained to the end has test accuracy at chance level (`chance_status`). Every run function
    that writes a record calls this, so the rule is applied in one place."""
    if result.status == "ok" and "accuracy" in metrics:
        at_chance, why = chance_status(metrics["accuracy"], splits.test.y, splits.num_classes)
        if at_chance:
            return "chance", why
    return result.status, result.message


def record_run(cfg: RunConfig, model: nn.Module, teacher: nn.Module | None, splits: Splits, result: FitResult,
               store: ResultStore, device: torch.device, started: float, train_share_s: float = 0.0,
               notes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Evaluate a trained model, checkpoint it and write its record (wall time counted from `started`,
    plus `train_share_s` for work shared with other runs). A run that trained to the end but whose test
    accuracy is at chance level gets status "chance" (one check for single and grouped runs)."""
    metrics = evaluate(cfg, model, teacher, splits, device, notes=notes) if result.status == "ok" else {}
    status, message = final_status(result, metrics, splits)
    if result.status == "ok" and train_classes(cfg.data) is not None:
        extra["bias_shift"] = bias_shift_record(cfg, model, splits, device)
    atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, store.checkpoint_path(cfg))
    if notes:
        extra["recovered"] = list(dict.fromkeys(notes))
    record = {
        "status": status,
        "message": message,
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
             device: torch.device, notes: list[str] | None = None) -> dict[str, float]:
    """Whole-test-set metrics; agreement/KL against the teacher (its cached test logits; a damaged cache is
    rebuilt and noted in `notes`); IM when the config names a transformation."""
    logits = predict_logits(model, splits.test.x, device=device, mean=splits.mean, std=splits.std)
    t_logits = None
    if cfg.teacher is not None and teacher is not None:
        t_logits = teacher_logits_for(cfg.teacher, teacher, cfg.data, "test", splits.test.x, splits, device, notes)
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
        metrics["flip_rate"] = float(flip_rate(logits, logits_t))
    if splits.val is not None:  # val_* metrics: what hyperparameter selection reads (kdutils.sweeps.tuning), never test
        v_logits = predict_logits(model, splits.val.x, device=device, mean=splits.mean, std=splits.std)
        metrics.update({f"val_{k}": v for k, v in classification_metrics(v_logits, splits.val.y).items()})
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in metrics.items()}
