"""Metrics over whole evaluation sets.

Every function takes the logits (or probabilities) of the *whole* set at once, so nothing is averaged per
batch (per-batch averages of ECE or KL are biased when the last batch is short). Numbers are computed in
float64 and returned as Python floats (``error_count`` returns an int) so they can go straight into a results
table. Use :func:`predict_logits` to get the logits of a model on a dataset.
"""
from __future__ import annotations

from numbers import Integral
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "NORMS",
    "accuracy",
    "error_count",
    "nll",
    "ece",
    "agreement",
    "predictive_kl",
    "invariance_metric",
    "flip_rate",
    "predict_logits",
    "classification_metrics",
    "bias_shift_errors",
]

NORMS = ("l1", "l2", "linf")


# ----------------------------------------------------------------------------------------------- checks
def _check_logits(logits: torch.Tensor, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] == 0:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a non-empty 2-D tensor (samples, classes), got {shape}")


def _check_labels(logits: torch.Tensor, y: torch.Tensor) -> None:
    _check_logits(logits)
    if not isinstance(y, torch.Tensor) or y.shape != logits.shape[:1]:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits {tuple(logits.shape)}, got {shape}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    _check_logits(a, na)
    _check_logits(b, nb)
    if a.shape != b.shape:
        raise ValueError(f"{na} {tuple(a.shape)} and {nb} {tuple(b.shape)} must have the same shape")


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits.detach().to(torch.float64), dim=1)


# ----------------------------------------------------------------------------------------------- metrics
def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose argmax equals the label."""
    _check_labels(logits, y)
    return (logits.detach().argmax(dim=1) == y.to(logits.device)).to(torch.float64).mean().item()


def error_count(logits: torch.Tensor, y: torch.Tensor) -> int:
    """Number of misclassified samples (exact, unlike ``(1 - accuracy) * N``)."""
    _check_labels(logits, y)
    return int((logits.detach().argmax(dim=1) != y.to(logits.device)).sum().item())


def nll(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Mean negative log-likelihood ``-log p_y`` (= cross-entropy), via log_softmax for stability."""
    _check_labels(logits, y)
    log_p = _log_probs(logits)
    return -log_p.gather(1, y.to(log_p.device).long().unsqueeze(1)).mean().item()


def ece(logits: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error with equal-width bins on the top-label confidence.

    Bins are ``(b/n, (b+1)/n]`` for b = 0..n-1 (confidence is always > 0, so (0, 1] is covered);
    ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|``, empty bins contribute 0.
    """
    _check_labels(logits, y)
    if isinstance(n_bins, bool) or not isinstance(n_bins, Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    n_bins = int(n_bins)
    probs = _log_probs(logits).exp()
    conf, pred = probs.max(dim=1)
    correct = (pred == y.to(pred.device)).to(torch.float64)
    inner = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=conf.device)[1:-1]
    # right=False: index i such that inner[i-1] < conf <= inner[i], i.e. right-closed bins.
    idx = torch.bucketize(conf, inner, right=False)
    sum_conf = torch.zeros(n_bins, dtype=torch.float64, device=conf.device).index_add_(0, idx, conf)
    sum_acc = torch.zeros_like(sum_conf).index_add_(0, idx, correct)
    # sum_b |B_b|/N * |acc_b - conf_b| = sum_b |sum_acc_b - sum_conf_b| / N
    return ((sum_acc - sum_conf).abs().sum() / conf.numel()).item()


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Top-1 agreement: fraction of samples where student and teacher predict the same class."""
    _check_pair(student_logits, teacher_logits, "student_logits", "teacher_logits")
    s = student_logits.detach().argmax(dim=1)
    t = teacher_logits.detach().to(s.device).argmax(dim=1)
    return (s == t).to(torch.float64).mean().item()


def predictive_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> float:
    """Mean over samples of KL(P_t || P_s) at temperature 1 (teacher first, as in the notation)."""
    _check_pair(teacher_logits, student_logits, "teacher_logits", "student_logits")
    log_t = _log_probs(teacher_logits)
    log_s = _log_probs(student_logits).to(log_t.device)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1).mean().item()


def invariance_metric(probs: torch.Tensor, probs_transformed: torch.Tensor, norm: str = "l1") -> float:
    """Invariance metric ``mean_i ||P(x_i) - P(T x_i)||_norm`` over probability vectors (norm: l1|l2|linf).

    0 means the predictions are exactly invariant to the transformation; with "l1" the maximum is 2.
    Takes probabilities (not logits) so the caller decides which temperature they come from.
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of: {', '.join(NORMS)}")
    if not isinstance(probs, torch.Tensor) or not isinstance(probs_transformed, torch.Tensor):
        raise ValueError("probs and probs_transformed must be tensors")
    if probs.shape != probs_transformed.shape:
        raise ValueError(
            f"probs {tuple(probs.shape)} and probs_transformed {tuple(probs_transformed.shape)} must have the same shape"
        )
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be a non-empty 2-D tensor (samples, classes), got {tuple(probs.shape)}")
    diff = probs.detach().to(torch.float64) - probs_transformed.detach().to(torch.float64).to(probs.device)
    order = {"l1": 1, "l2": 2, "linf": float("inf")}[norm]
    return torch.linalg.vector_norm(diff, ord=order, dim=1).mean().item()


def flip_rate(outputs: torch.Tensor, outputs_transformed: torch.Tensor) -> float:
    """Fraction of samples whose top-1 class changes under the transformation: mean_i [argmax f(x_i) !=
    argmax f(T x_i)].

    A second invariance measure beside `invariance_metric`: IM shrinks as a model grows more confident (two
    near one-hot outputs of the same class are close whatever the input), so a fall in IM can be a rise in
    confidence; the flip rate only counts changed decisions. Takes logits or probabilities (the argmax is the
    same); ties go to the lowest class index, as `torch.argmax`.
    """
    _check_pair(outputs, outputs_transformed, "outputs", "outputs_transformed")
    a = outputs.detach().argmax(dim=1)
    b = outputs_transformed.detach().to(a.device).argmax(dim=1)
    return (a != b).to(torch.float64).mean().item()


# ----------------------------------------------------------------------------------------------- inference
def _stat_view(values: Sequence[float] | torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """mean/std shaped to broadcast like DeviceLoader's: channel axis 1 for (N, C, H, W) images, else the last."""
    t = torch.as_tensor(values, dtype=torch.float32, device=x.device).flatten()
    n = x.shape[1] if x.ndim == 4 else x.shape[-1]
    if x.ndim < 2 or t.numel() not in (1, n):
        raise ValueError(f"{name} has {t.numel()} values; expected 1 or {n} (one per channel/feature) "
                         f"for input of shape {tuple(x.shape)}")
    if name == "std" and bool((t <= 0).any()):
        raise ValueError(f"std must be positive, got {t.tolist()}")
    t = t.expand(n)
    return t.view(1, n, 1, 1) if x.ndim == 4 else t.view(*([1] * (x.ndim - 1)), n)


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Logits of ``model`` on all of ``x`` (eval mode, no grad), as float32 on the CPU.

    Preprocessing is the same as :class:`kdutils.data.device_loader.DeviceLoader`'s (minus augmentation), so evaluation
    sees what training saw: uint8 inputs (raw images) become float in [0, 1] (x / 255); float inputs are used as
    they are. Then, only if ``mean``/``std`` are given, ``(x - mean) / std`` per channel (axis 1 of (N, C, H, W)
    images) or per feature (last axis otherwise, e.g. point sets (N, P, F)). Pass mean=std=None for inputs that
    are already normalised. ``device`` defaults to the device of the model's parameters; the whole set may stay
    on the CPU, batches are moved one at a time. The train/eval mode of every submodule is restored afterwards.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if (mean is None) != (std is None):
        raise ValueError(f"give both mean and std or neither, got mean={mean!r}, std={std!r}")
    is_uint8 = x.dtype == torch.uint8
    if not is_uint8 and not x.is_floating_point():
        raise ValueError(f"x must be uint8 images or a floating-point tensor, got dtype {x.dtype}")
    if device is None:
        p = next(iter(model.parameters()), None)
        if p is None:
            p = next(iter(model.buffers()), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        outputs = []
        m_t = s_t = None
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            if is_uint8:
                xb = xb.to(torch.float32).mul_(1.0 / 255.0)  # same arithmetic as DeviceLoader
            if mean is not None:
                if m_t is None:
                    m_t, s_t = _stat_view(mean, xb, "mean"), _stat_view(std, xb, "std")
                xb = (xb - m_t) / s_t
            outputs.append(model(xb).detach().to(device="cpu", dtype=torch.float32))
        if not outputs:
            raise ValueError("x is empty; nothing to predict")
        return torch.cat(outputs, dim=0)
    finally:
        for m, was_training in modes:
            m.training = was_training


def classification_metrics(
    logits: torch.Tensor,
    y: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    n_bins: int = 15,
) -> dict[str, float]:
    """All standard numbers for one model on one set: accuracy, errors (int), nll, ece and, given a teacher,
    top-1 agreement and predictive KL(P_t || P_s)."""
    out: dict[str, float] = {
        "accuracy": accuracy(logits, y),
        "errors": error_count(logits, y),
        "nll": nll(logits, y),
        "ece": ece(logits, y, n_bins=n_bins),
    }
    if teacher_logits is not None:
        out["agreement"] = agreement(logits, teacher_logits)
        out["kl"] = predictive_kl(teacher_logits, logits)
    return out


def bias_shift_errors(logits: torch.Tensor, y: torch.Tensor, classes: Sequence[int],
                      shifts: Sequence[float]) -> dict[str, list[int] | int]:
    """Errors when a constant `shift` is added to the logits (the output biases) of `classes`, for each shift.

    Why: a net that never saw some classes in training can still rank them; a bias shift chosen afterwards
    shows how much it knows (adding one constant to every logit changes nothing, so raising a set of classes
    is the same as lowering all the others). Returns "errors" (all samples) and "errors_in" (samples whose
    label is in `classes`) per shift, and the sizes "n" and "n_in".
    """
    _check_logits(logits)
    _check_labels(logits, y)
    n_classes = logits.shape[1]
    chosen = sorted({int(c) for c in classes})
    if not chosen or any(not 0 <= c < n_classes for c in chosen):
        raise ValueError(f"classes must be a non-empty list of labels in 0..{n_classes - 1}, got {list(classes)!r}")
    mask = torch.zeros(n_classes, dtype=torch.bool)
    mask[chosen] = True
    x = logits.detach().double().cpu()
    y = y.detach().cpu().long()
    in_set = mask[y]
    errors: list[int] = []
    errors_in: list[int] = []
    for shift in shifts:
        pred = (x + float(shift) * mask.double()).argmax(1)
        wrong = pred != y
        errors.append(int(wrong.sum()))
        errors_in.append(int((wrong & in_set).sum()))
    return {"errors": errors, "errors_in": errors_in, "n": int(y.numel()), "n_in": int(in_set.sum())}
