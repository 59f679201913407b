"""Train (or load) one distilled student of the fidelity chapter from its `DistillSpec`, and record it.

Why the chapter has its own runner: a Stanton et al. student needs what `kdutils.training.runner.run` does not do (and
must not be changed to do): an ensemble teacher, a distillation set other than the teacher's training split
(out-of-distribution images appended, a fraction of it, or the *other* half of the data), a start near the
teacher's weights, and fidelity measured on the distillation data as well as on the test set. The pieces are
the shared ones: teachers are `runner.load_model` runs (trained and checkpointed once, reused by every
student), the loop is `kdutils.training.train.fit`, records go through `ResultStore` with provenance.

What one record holds (``metrics``): test ``accuracy``/``nll``/``ece`` (10 bins, as the authors)/``errors``,
test ``agreement`` and ``kl`` (KL(P_t || P_s) at temperature 1) against the teacher (the ensemble for k > 1),
``teacher_accuracy`` and ``teacher_nll`` of that teacher, ``train_agreement``/``train_kl`` on the distillation
data (for a random policy: on one fresh pass of augmented batches, the inputs the student trains on),
``train_distill_loss`` (tau^2 KL at the spec's tau on the fixed distillation images, claim 6) and ``val_*``
numbers on held-out training images (what lr selection reads). Claim-6 students also record ``line``: the
distillation loss at points of the straight line from the student (t = 0) to the teacher (t = 1), BatchNorm
statistics recomputed at every point.

Baselines (``spec.evaluate``, nothing trained): "plain" records a plain model's test agreement with the teacher;
"init" records the student at its near-teacher initialisation, BatchNorm recomputed (r = 0: the teacher itself so
re-estimated, the ceiling of claim 6). ``spec.n_unlabelled`` appends training images the teacher never saw,
unlabelled (`unused_images`), for the alpha = 0 arm.

Resume: a finished record is returned as it is. Load-only mode (``KDUTILS_LOAD_ONLY=1``, the book build)
raises `kdutils.training.runner.MissingRunError` for a missing one instead of training.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from kdutils.chapters.does_kd_work.ensemble import EnsembleTeacher
from kdutils.chapters.does_kd_work.evaluate import fidelity_metrics, fidelity_on_loader
from kdutils.chapters.does_kd_work.interpolation import distillation_loss_fn, init_lr, interpolate_init, loss_along_line
from kdutils.chapters.does_kd_work.policies import ood_distillation_set, parse_policy
from kdutils.config import DataConfig, TrainConfig
from kdutils.data import datasets as data_mod
from kdutils.data.device_loader import DeviceLoader
from kdutils.data.splits import train_val_split
from kdutils.losses import kd_loss
from kdutils.metrics import classification_metrics, predict_logits
from kdutils.models import build_model
from kdutils.store.provenance import provenance
from kdutils.store.recovery import collecting
from kdutils.store.store import ResultStore
from kdutils.training.runner import (MissingRunError, Splits, load_split, seeded_subset, default_device, final_status,
                                     load_model, load_only, prepare_data, seed_everything, sole_writer)
from kdutils.training.train import fit, freeze

if TYPE_CHECKING:  # a type only: the plan imports this module's run_spec when it runs
    from kdutils.chapters.does_kd_work.plan import DistillSpec

__all__ = ["LINE_POINTS", "ECE_BINS", "distillation_set", "evaluate_baseline", "missing_spec_error", "run_spec",
           "teacher_for", "unused_images"]

#: Points of the straight line student -> teacher where the distillation loss is recorded (claim 6).
LINE_POINTS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
#: Images of the distillation set the line is evaluated on (a fixed subset keeps it cheap).
LINE_IMAGES = 1000
ECE_BINS = 10  # the authors' ECE (utils/metrics.py)
#: Fixed seed of every subset the chapter draws (distillation fraction, "new" half, OOD images): the same
#: images for every student seed, so that seeds vary the student only (paired design).
SUBSET_SEED = 0
STUDENT_SEED_OFFSET = 100


def missing_spec_error(spec: DistillSpec, store: ResultStore) -> MissingRunError:
    return MissingRunError(
        f"no record for experiment {spec.experiment!r}, distilled student of claim {spec.claim} (policy "
        f"{spec.policy!r}, {spec.ensemble_size} teacher(s), seed {spec.seed}), key {spec.key()} (profile "
        f"{spec.profile!r}) at {store.path(spec)}, and KDUTILS_LOAD_ONLY=1 forbids training it here. "
        f"Produce it with `python -m kdutils run does_kd_work --profile {spec.profile}`, then commit the new records "
        "in results/; or unset KDUTILS_LOAD_ONLY to train it now.")


_TEACHERS: dict[tuple[str, ...], nn.Module] = {}


def teacher_for(spec: DistillSpec, store: ResultStore, device: torch.device, progress: bool = True) -> nn.Module:
    """The spec's teacher, frozen: one trained run (`runner.load_model`, trained now if missing) or the
    `EnsembleTeacher` of its members (the student fits the mean of their probabilities)."""
    key = tuple(t.key() for t in spec.teachers)
    if key not in _TEACHERS:
        members = [freeze(load_model(t, store, device, progress)) for t in spec.teachers]
        _TEACHERS[key] = freeze(members[0] if len(members) == 1 else EnsembleTeacher(members).to(device))
    return _TEACHERS[key]


def distillation_set(spec: DistillSpec, splits: Splits) -> tuple[data_mod.ArrayDataset, data_mod.ArrayDataset | None]:
    """(distillation images, validation images) of a spec.

    recycled: the teachers' own training split; new: as many images of the held-out half as the teachers
    trained on (a 2-fold teacher's ``val`` split), the rest of that half serving as validation. Then the
    first ``distill_fraction`` of a fixed permutation, then the OOD images appended (label -1).
    """
    train, val = splits.train, splits.val
    if spec.distill_data == "new":
        if val is None or spec.teachers[0].data.fold is None:
            raise ValueError("distill_data='new' needs half-data teachers (a 2-fold DataConfig)")
        perm = torch.randperm(len(val), generator=torch.Generator().manual_seed(SUBSET_SEED))
        n = min(len(train), len(val))
        train, val = val.subset(perm[:n].sort().values), val.subset(perm[n:n + max(1, len(splits.test))].sort().values)
    elif val is not None and spec.teachers[0].data.fold is not None:  # a half teacher: keep val small
        val = val.subset(seeded_subset(len(val), min(len(val), len(splits.test)), SUBSET_SEED))
    if spec.distill_fraction < 1.0:
        k = max(1, round(len(train) * spec.distill_fraction))
        train = train.subset(seeded_subset(len(train), k, SUBSET_SEED))
    if spec.ood_dataset is not None and spec.n_ood > 0:
        ood = load_split(spec.ood_dataset, "train", ())
        train = ood_distillation_set(train, ood, spec.n_ood, seed=SUBSET_SEED)
    if spec.n_unlabelled:
        train = ood_distillation_set(train, unused_images(spec.teachers[0].data), spec.n_unlabelled, seed=SUBSET_SEED)
    return train, val


def unused_images(data: DataConfig) -> data_mod.ArrayDataset:
    """The training-split images a teacher of `data` never saw and that are not its validation images: the
    pool of the poster's "unlabelled examples" (alpha = 0 arm). Rebuilt from the same seeded splits as
    `runner.prepare_data` (validation hold-out, then the seeded subset)."""
    if data.fold is not None:
        raise ValueError("unlabelled images are drawn for whole-split teachers only (fold must be None)")
    full = load_split(data.dataset, "train", tuple(sorted(data.options.items())))
    pool = torch.arange(len(full))
    if data.val_size:
        pool, _val = train_val_split(len(full), data.val_size, data.split_seed)
    if data.n_train is None or data.n_train >= len(pool):
        return full.subset(pool[:0])  # the teacher saw every image
    keep = torch.ones(len(pool), dtype=torch.bool)
    keep[seeded_subset(len(pool), data.n_train, data.split_seed)] = False
    return full.subset(pool[keep])


def run_spec(spec: DistillSpec, store: ResultStore | None = None, *, device: torch.device | None = None,
             progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Train and evaluate one distilled student unless its record exists; return the record."""
    store = store or ResultStore()
    if not force and (record := store.get(spec)) is not None:
        return record
    if load_only() and not force:
        raise missing_spec_error(spec, store)
    with sole_writer(spec, store, force) as done:  # another process may have trained it while this one waited
        if done is not None:
            return done
        notes: list[str] = []
        with collecting(notes):  # a teacher checkpoint or data cache rebuilt on the way is noted in the record
            return _train_spec(spec, store, device or default_device(), progress, notes)


def _train_spec(spec: DistillSpec, store: ResultStore, device: torch.device, progress: bool,
                notes: list[str]) -> dict[str, Any]:
    """`run_spec`'s work, holding the spec's run lock."""
    started = time.perf_counter()
    splits = prepare_data(spec.teachers[0].data)
    teacher = teacher_for(spec, store, device, progress)
    distill, val = distillation_set(spec, splits)
    if spec.evaluate:
        metrics = evaluate_baseline(spec, teacher, splits, distill, store, device, progress)
        return store.put(spec, {
            "status": "ok", "message": "", "metrics": metrics, "n_distill": len(distill), "n_test": len(splits.test),
            "wall_time_s": round(time.perf_counter() - started, 3), "provenance": provenance(device),
            **({"recovered": list(dict.fromkeys(notes))} if notes else {})})
    augment = parse_policy(spec.augment)
    mean, std = splits.mean, splits.std

    seed_everything(spec.seed + STUDENT_SEED_OFFSET)
    kwargs = {} if spec.widths is None else {"widths": tuple(spec.widths)}
    student = build_model(spec.student_model, splits.in_shape, splits.num_classes, **kwargs)
    lr = float(spec.lr)
    cached = None
    if augment is None:  # fixed inputs: the teacher's logits once (the teacher runs every step otherwise)
        cached = predict_logits(teacher, distill.x, device=device, mean=mean, std=std)
    if spec.r is not None:
        student = interpolate_init(student, teacher, spec.r, bn_x=distill.x, mean=mean, std=std)
        lr = init_lr(lr, spec.r)
    loader = DeviceLoader(distill.x, distill.y, spec.batch_size, shuffle=True, augment=augment, mean=mean,
                          std=std, device=device, seed=spec.seed + STUDENT_SEED_OFFSET)
    cfg = TrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                      nesterov=True, weight_decay=spec.weight_decay, schedule="cosine", augment=spec.augment)
    result = fit(student, loader, cfg, teacher=None if cached is not None else teacher, teacher_logits=cached,
                 tau=spec.tau, alpha=spec.alpha, device=device, progress=progress,
                 desc=f"{spec.experiment}/claim{spec.claim}/{spec.policy}")
    metrics = {}  # typed by the baseline branch above: dict[str, float]
    extra: dict[str, Any] = {}
    if result.status == "ok":
        metrics, extra = _evaluate(spec, student, teacher, splits, distill, val, loader, cached, device)
    status, message = final_status(result, metrics, splits)
    record = {"status": status, "message": message, "metrics": metrics, "history": result.history,
              "epochs_run": result.epochs_run, "lr_used": lr, "n_distill": len(distill),
              "n_train": len(distill), "n_test": len(splits.test), "n_val": 0 if val is None else len(val),
              "wall_time_s": round(time.perf_counter() - started, 3), "provenance": provenance(device), **extra}
    if notes:
        record["recovered"] = list(dict.fromkeys(notes))
    return store.put(spec, record)


def evaluate_baseline(spec: DistillSpec, teacher: nn.Module, splits: Splits, distill, store: ResultStore,
                      device: torch.device, progress: bool = True) -> dict[str, float]:
    """A baseline's numbers against the teacher, nothing trained: "plain", plain model `plain_member` (the
    teacher recipe at another seed) on the test set; "init", the student of `spec.seed` at its near-teacher
    initialisation (BatchNorm recomputed on the distillation images; r = 0 is the teacher so re-estimated,
    the ceiling of every near-teacher start) on the test set and the distillation images."""
    from dataclasses import replace

    mean, std = splits.mean, splits.std
    if spec.evaluate == "plain":
        assert spec.plain_member is not None, "DistillSpec requires plain_member for a 'plain' baseline"
        model = freeze(load_model(replace(spec.teachers[0], seed=spec.plain_member), store, device, progress))
    else:
        seed_everything(spec.seed + STUDENT_SEED_OFFSET)  # the same random init as the trained student's
        kwargs = {} if spec.widths is None else {"widths": tuple(spec.widths)}
        model = build_model(spec.student_model, splits.in_shape, splits.num_classes, **kwargs)
        assert spec.r is not None, "DistillSpec requires r for an 'init' baseline (the only other evaluation)"
        model = interpolate_init(model, teacher, float(spec.r), bn_x=distill.x, mean=mean, std=std).to(device)
    s_test = predict_logits(model, splits.test.x, device=device, mean=mean, std=std)
    t_test = predict_logits(teacher, splits.test.x, device=device, mean=mean, std=std)
    metrics = classification_metrics(s_test, splits.test.y, teacher_logits=t_test, n_bins=ECE_BINS)
    metrics["teacher_accuracy"] = classification_metrics(t_test, splits.test.y, n_bins=ECE_BINS)["accuracy"]
    if spec.evaluate == "init":
        s_train = predict_logits(model, distill.x, device=device, mean=mean, std=std)
        t_train = predict_logits(teacher, distill.x, device=device, mean=mean, std=std)
        fid = fidelity_metrics(s_train, t_train)
        metrics.update({"train_agreement": fid["agreement"], "train_kl": fid["kl"],
                        "train_distill_loss": float(kd_loss(s_train, t_train, spec.tau).item())})
    return {k: (int(v) if k == "errors" else float(v)) for k, v in metrics.items()}


def _evaluate(spec: DistillSpec, student: nn.Module, teacher: nn.Module, splits: Splits, distill, val, loader,
              cached: torch.Tensor | None, device: torch.device) -> tuple[dict[str, float], dict[str, Any]]:
    mean, std = splits.mean, splits.std
    s_test = predict_logits(student, splits.test.x, device=device, mean=mean, std=std)
    t_test = predict_logits(teacher, splits.test.x, device=device, mean=mean, std=std)
    metrics = classification_metrics(s_test, splits.test.y, teacher_logits=t_test, n_bins=ECE_BINS)
    t_metrics = classification_metrics(t_test, splits.test.y, n_bins=ECE_BINS)
    metrics.update({"teacher_accuracy": t_metrics["accuracy"], "teacher_nll": t_metrics["nll"],
                    "teacher_ece": t_metrics["ece"]})
    if cached is not None:  # fixed distillation images
        s_train = predict_logits(student, distill.x, device=device, mean=mean, std=std)
        train_fid = fidelity_metrics(s_train, cached)
        metrics["train_distill_loss"] = float(kd_loss(s_train, cached, spec.tau).item())
    else:  # one fresh pass of the policy's random inputs, labelled by the teacher
        loader.set_epoch(spec.epochs)
        train_fid = fidelity_on_loader(student, teacher, loader)
    metrics.update({"train_agreement": train_fid["agreement"], "train_kl": train_fid["kl"]})
    if val is not None and len(val):
        s_val = predict_logits(student, val.x, device=device, mean=mean, std=std)
        t_val = predict_logits(teacher, val.x, device=device, mean=mean, std=std)
        metrics.update({f"val_{k}": v for k, v in
                        classification_metrics(s_val, val.y, teacher_logits=t_val, n_bins=ECE_BINS).items()})
    extra: dict[str, Any] = {}
    if cached is not None and spec.ensemble_size == 1 and spec.ood_dataset is None and spec.distill_fraction == 1.0:
        n = min(LINE_IMAGES, len(distill))
        idx = seeded_subset(len(distill), n, SUBSET_SEED)
        x_sub = distill.x[idx]
        loss_fn = distillation_loss_fn(cached[idx], x_sub, spec.tau, mean=mean, std=std)
        extra["line"] = loss_along_line(student.cpu() if device.type == "cpu" else student, teacher, loss_fn,
                                        ts=LINE_POINTS, bn_x=x_sub, mean=mean, std=std)
        extra["line_images"] = n
    metrics = {k: (int(v) if k == "errors" else float(v)) for k, v in metrics.items()}
    return metrics, extra
