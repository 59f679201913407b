"""Fully connected nets: the teacher/student pairs of Hinton et al. (2015) on MNIST and the MLP students of
the invariance experiments. The input is flattened, so any per-sample shape works."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """Activation module by name; unknown names fail with the allowed list."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def _check_p(name: str, p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")
    return float(p)


def _check_max_norm(max_norm: float | None) -> float | None:
    if max_norm is None:
        return None
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not (
            math.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be a positive finite number or None, got {max_norm!r}")
    return float(max_norm)


class MLP(nn.Module):
    """Flatten -> [input dropout] -> (Linear -> activation -> dropout) per hidden width -> head.

    Dropout sits inside `features`, so in train mode two calls differ; in eval mode
    ``forward(x) == head(features(x))`` exactly.

    `max_norm` is the weight constraint of dropout training (Srivastava et al., 2014): the incoming weight
    vector of every hidden unit is projected back onto the ball ||w||_2 <= max_norm. The projection runs
    at the start of every forward pass, i.e. after each optimiser step and before the weights are used,
    which is projected SGD; it edits the parameters in place, so such a net must be trained on its own
    (not batched with `torch.func` as the students are).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int],
        num_classes: int,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        activation: str = "relu",
        max_norm: float | None = None,
    ) -> None:
        super().__init__()
        self.max_norm = _check_max_norm(max_norm)
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive ints, got {hidden!r}")
        dropout = _check_p("dropout", dropout)
        input_dropout = _check_p("input_dropout", input_dropout)
        in_features = math.prod(int(s) for s in in_shape)

        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.in_shape = tuple(int(s) for s in in_shape)
        self.hidden = tuple(hidden)

    def hidden_linears(self) -> list[nn.Linear]:
        """The Linear layers that feed hidden units (the head is not constrained)."""
        return [m for m in self.body if isinstance(m, nn.Linear)]

    def apply_max_norm(self) -> None:
        """Project each hidden unit's incoming weights onto the max-norm ball (no-op without max_norm)."""
        if self.max_norm is None:
            return
        with torch.no_grad():
            for lin in self.hidden_linears():
                lin.weight.renorm_(2, 0, self.max_norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last hidden layer (the flattened input when there are no hidden layers)."""
        self.apply_max_norm()
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_mlp(in_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (512,), **kwargs) -> MLP:
    """Generic "mlp": pass ``hidden=[...]`` and optionally dropout, input_dropout, activation."""
    return MLP(in_shape, hidden, num_classes, **kwargs)


def _preset(hidden: Sequence[int], dropout: float = 0.0, input_dropout: float = 0.0) -> Callable[..., MLP]:
    """Fixed widths; the regularisation defaults can still be overridden by keyword."""

    def build(in_shape: Sequence[int], num_classes: int, **kwargs) -> MLP:
        kwargs.setdefault("dropout", dropout)
        kwargs.setdefault("input_dropout", input_dropout)
        return MLP(in_shape, hidden, num_classes, **kwargs)

    return build


#: name -> builder(in_shape, num_classes, **kwargs); registered by kdutils.models.
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
    # Hinton et al. 2015, MNIST: big regularised teacher (dropout 0.5 hidden, 0.2 input) ...
    "mlp_1200x2": _preset((1200, 1200), dropout=0.5, input_dropout=0.2),
    # ... and small unregularised student.
    "mlp_800x2": _preset((800, 800)),
    # Invariance experiments: narrow and wide 4-hidden-layer students.
    "mlp_256x4": _preset((256,) * 4),
    "mlp_2048x4": _preset((2048,) * 4),
}

__all__ = ["MLP", "BUILDERS", "build_mlp", "make_activation"]
