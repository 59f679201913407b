"""Pictures of the invariance chapter's data: what "translation" and "permutation" mean here.

Why: the chapter's tables speak of IM under a translation or a permutation; a reader should see one shifted
digit (with what the translation-invariant teacher and the MLP student predict on it) and one point set before
and after the transformations. Predictions come from checkpoints of recorded runs only: this module never
trains (the book build must not). Checkpoints stay out of git, so the first time they are computed the
predictions are written to `results/pictures/` with the keys of the runs that made them; a build without the
checkpoints (CI, a reader's laptop) shows those recorded predictions, and without either the data alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from kdutils.report import present

MNIST_SHIFT = (3, 4)  # (dy, dx) pixels: within the circular shifts of up to 4 px the chapter's MNIST IM uses
SET_TRANSLATION = 0.25  # the set-MNIST IM translates (x, y) by up to 0.25


@dataclass
class Predictions:
    """Class probabilities of one model on the original and the transformed input."""

    name: str
    original: np.ndarray
    shifted: np.ndarray


def mnist_example(index: int = 0, shift: tuple[int, int] = MNIST_SHIFT) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(image, circularly shifted image, label) of one MNIST test digit, uint8 (1, 28, 28)."""
    from kdutils.data.registry import load_dataset
    from kdutils.data.symmetry import circular_shift

    ds = load_dataset("mnist", "test")
    if not 0 <= index < len(ds.y):
        raise ValueError(f"index must be in [0, {len(ds.y)}), got {index}")
    x = ds.x[index:index + 1]
    return x[0], circular_shift(x, shift)[0], int(ds.y[index])


def set_mnist_example(index: int = 0, n_points: int = 100, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(points, points in a random order, points translated in (x, y), label) of one set-MNIST test digit.
    Points are (P, 3): x, y and pixel intensity."""
    from kdutils.data.registry import load_dataset
    from kdutils.data.symmetry import permute_set, translate_points

    ds = load_dataset("set_mnist", "test", n_points=n_points)
    if not 0 <= index < len(ds.y):
        raise ValueError(f"index must be in [0, {len(ds.y)}), got {index}")
    pts = ds.x[index:index + 1]
    gen = torch.Generator().manual_seed(seed)
    permuted = permute_set(pts, generator=gen)
    translated = translate_points(pts, SET_TRANSLATION, generator=gen, coord_dims=[0, 1])
    return pts[0], permuted[0], translated[0], int(ds.y[index])


def predictions_path(profile: str, fold: int, index: int, shift: tuple[int, int]) -> Path:
    """Where the predictions on one shifted test digit are recorded (in the results store, committed)."""
    from kdutils.paths import results_dir

    return results_dir() / "pictures" / f"mnist_shift-{profile}-fold{fold}-index{index}-{shift[0]}x{shift[1]}.json"


def mnist_predictions(image: torch.Tensor, shifted: torch.Tensor, profile: str = "cpu", fold: int = 0,
                      index: int = 0, shift: tuple[int, int] = MNIST_SHIFT) -> list[Predictions] | None:
    """The resnet_mlp pair's teacher and MLP student (alone) on the two images (test digit `index`, shifted by
    `shift`): recorded predictions of exactly these runs if present, else computed from both checkpoints and
    recorded; None when neither exists. Never trains."""
    from kdutils.chapters.invariance import plan as inv
    from kdutils.chapters.invariance import plan
    from kdutils.metrics import predict_logits
    from kdutils.training.runner import load_model, prepare_data
    from kdutils.store.store import ResultStore

    from kdutils.training import runner

    store = ResultStore()
    # the configs depend on recorded choices (e.g. the learning-rate selection); not recorded -> no predictions
    not_recorded = tuple(e for e in (getattr(inv, "SelectionMissing", None), getattr(runner, "MissingRunError", None))
                         if e is not None)
    try:
        cfgs = [c for c in plan.point_configs(profile, "resnet_mlp", fold=fold, direction="forward")
                if c.role in ("teacher", "student")]
    except not_recorded:
        return None
    teacher = [c for c in cfgs if c.role == "teacher"][:1]
    students = [c for c in cfgs if c.role == "student"][:1]
    chosen = teacher + students
    if len(chosen) < 2:
        return None
    keys = [c.key() for c in chosen]
    path = predictions_path(profile, fold, index, shift)
    recorded = _read_predictions(path, keys)
    if recorded is not None:
        return recorded
    if not all(store.checkpoint_path(c).exists() for c in chosen):
        return None
    splits = prepare_data(chosen[0].data)
    x = torch.stack([image, shifted])
    out = []
    for cfg, name in zip(chosen, ("ResNet teacher (APS)", "MLP student")):
        model = load_model(cfg, store, device=torch.device("cpu"), progress=False)
        p = predict_logits(model, x, mean=splits.mean, std=splits.std).softmax(1).numpy()
        out.append(Predictions(name, p[0], p[1]))
    from kdutils.store.provenance import provenance
    from kdutils.store.io import atomic_write_json

    atomic_write_json(path, {"keys": keys, "profile": profile, "fold": fold, "index": index, "shift": list(shift),
                             "models": [{**asdict(p), "original": p.original.tolist(), "shifted": p.shifted.tolist()}
                                        for p in out],
                             "provenance": provenance(torch.device("cpu"))})
    return out


def _read_predictions(path: Path, keys: list[str]) -> list[Predictions] | None:
    """Recorded predictions of exactly the runs `keys`, or None (absent, of other runs, or unreadable)."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        import warnings

        warnings.warn(f"damaged predictions record {path}: ignored (move it aside; it is rebuilt from checkpoints)")
        return None
    if record.get("keys") != keys:
        return None
    return [Predictions(m["name"], np.asarray(m["original"]), np.asarray(m["shifted"])) for m in record["models"]]


def digit_figure(image: torch.Tensor, shifted: torch.Tensor, label: int, preds: list[Predictions] | None = None,
                 shift: tuple[int, int] = MNIST_SHIFT):
    """The digit and its shifted copy; with predictions, each model's class probabilities on both."""
    n = 2 + (len(preds) if preds else 0)
    fig, axes = present.page_figure(n, ncols=min(n, 4), panel_height=2.4)
    for ax, img, title in zip(axes, (image, shifted), (f"test digit (label {label})",
                                                        f"shifted by {shift[0]} down, {shift[1]} right")):
        ax.imshow(img.squeeze(0).numpy(), cmap="gray_r")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, p in zip(axes[2:], preds or []):
        k = np.arange(len(p.original))
        ax.bar(k - 0.2, p.original, width=0.4, label="original")
        ax.bar(k + 0.2, p.shifted, width=0.4, label="shifted")
        ax.set_xticks(k)
        ax.set_ylim(0, 1)
        ax.set_title(p.name, fontsize=10)
        ax.set_xlabel("class")
        ax.set_ylabel("probability")
    if preds:
        present.shared_legend(fig, axes[2:])
    return fig


def pointset_figure(points: torch.Tensor, permuted: torch.Tensor, translated: torch.Tensor, label: int):
    """The point set, the same set listed in another order (colour = position in the list), and the set
    translated in the plane. A permutation-invariant model sees the first two as the same input."""
    fig, axes = present.page_figure(3, panel_height=2.6)
    order = np.arange(points.shape[0])
    for ax, pts, title in zip(axes, (points, permuted, translated),
                              (f"set-MNIST digit (label {label})", "same points, permuted order",
                               f"translated by up to {SET_TRANSLATION:g}")):
        p = pts.numpy()
        if pts is translated:
            ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), c="lightgrey", s=14, label="original")
        sc = ax.scatter(p[:, 0], p[:, 1], c=order, cmap="viridis", s=14)
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(-1.3, 1.3)
        ax.set_ylim(-1.3, 1.3)
        ax.tick_params(labelsize=8)
    fig.colorbar(sc, ax=axes, shrink=0.8, label="position in the list")
    return fig


def describe_predictions(preds: list[Predictions] | None, label: int) -> str:
    """One sentence per model: its top class and confidence on the original and on the shifted digit."""
    if not preds:
        return ("⏳ *Predictions need the `cpu` runs*: no trained ResNet teacher or MLP student checkpoint is in "
                "the cache on this machine and no predictions are recorded in `results/pictures/`; this page never trains. "
                "`python -m kdutils run invariance --profile cpu --set pair resnet_mlp` makes them.")
    parts = []
    for p in preds:
        a, b = int(p.original.argmax()), int(p.shifted.argmax())
        parts.append(f"the {p.name} says {a} ({p.original[a]:.0%}) on the original and {b} ({p.shifted[b]:.0%}) "
                     f"on the shifted digit (L1 change of its probabilities: {np.abs(p.original - p.shifted).sum():.2f})")
    return f"For this digit (label {label}), " + "; ".join(parts) + "."

