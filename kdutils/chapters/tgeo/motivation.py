"""The poster's motivation experiment (Steps 1-6), as data helpers; the training itself uses `kdutils.training.train`.

1. split the training samples into D (the teacher predicts them correctly) and D' (it does not);
2. train a student with alpha = 0.5 for a while (the chapter's job);
3. ST_i = || softmax(student_i) - softmax(teacher_i) ||_2, the Euclidean distance of the predicted
   probability vectors;
4. sort D and D' by ST and cut each into five equal groups, g1..g5 and g'1..g'5 (ascending ST);
5. continue training copies of the student with alpha in {0.1, 0.3, 0.5, 0.7, 0.9} (the chapter's job);
6. evaluate each continued student on every group: `group_accuracy` gives the group x alpha heatmap,
   `summarise_by_group` the distribution of any per-sample value (e.g. learned alpha_i) by group (claim 3).

"Equal" groups: `torch.tensor_split` of the sorted order, so sizes differ by at most one sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd

__all__ = ["student_teacher_distance", "MotivationGroups", "motivation_groups", "group_accuracy",
           "summarise_by_group"]


def student_teacher_distance(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """ST_i: Euclidean distance between the student's and the teacher's (tau = 1) class probabilities."""
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"need two (N, C) logit tensors of one shape, got {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    s = F.softmax(student_logits.detach().double(), dim=1)
    t = F.softmax(teacher_logits.detach().double(), dim=1)
    return torch.linalg.vector_norm(s - t, dim=1)


@dataclass(frozen=True)
class MotivationGroups:
    """Sample indices of the groups: `correct[k]` is g_{k+1} within D, `incorrect[k]` is g'_{k+1} within D',
    both in ascending ST; `distance` is ST for every sample."""

    correct: tuple[torch.Tensor, ...]
    incorrect: tuple[torch.Tensor, ...]
    distance: torch.Tensor

    def named(self) -> dict[str, torch.Tensor]:
        """{"g1": idx, ..., "g5": idx, "g'1": idx, ...}: the heatmaps' row labels, as in the poster."""
        out = {f"g{k + 1}": g for k, g in enumerate(self.correct)}
        out.update({f"g'{k + 1}": g for k, g in enumerate(self.incorrect)})
        return out


def _split_by_distance(members: torch.Tensor, distance: torch.Tensor, n_groups: int, what: str
                       ) -> tuple[torch.Tensor, ...]:
    if members.numel() < n_groups:
        raise ValueError(f"{what} has {members.numel()} samples, fewer than n_groups={n_groups}; "
                         "use more samples or fewer groups")
    order = torch.sort(distance[members], stable=True).indices
    return tuple(members[part] for part in torch.tensor_split(order, n_groups))


def motivation_groups(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      n_groups: int = 5) -> MotivationGroups:
    """Steps 1, 3 and 4: teacher-correct / teacher-wrong subsets, each cut into n_groups by ascending ST."""
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 1:
        raise ValueError(f"n_groups must be a positive int, got {n_groups!r}")
    if targets.ndim != 1 or targets.shape[0] != teacher_logits.shape[0]:
        raise ValueError(f"targets must be 1-d with one label per sample ({teacher_logits.shape[0]}), "
                         f"got shape {tuple(targets.shape)}")
    distance = student_teacher_distance(student_logits, teacher_logits)
    right = teacher_logits.argmax(1) == targets
    correct = _split_by_distance(torch.nonzero(right).flatten(), distance, n_groups, "D (teacher correct)")
    wrong = _split_by_distance(torch.nonzero(~right).flatten(), distance, n_groups, "D' (teacher wrong)")
    return MotivationGroups(correct, wrong, distance)


def group_accuracy(predictions: Mapping[float, torch.Tensor], targets: torch.Tensor, groups: MotivationGroups
                   ) -> pd.DataFrame:
    """Step 6: accuracy (%) of each continued student (one per alpha) on each group: rows g1..g5, g'1..g'5,
    columns the alphas. `predictions[alpha]` are that student's logits (N, C) or predicted labels (N,)."""
    table = {}
    for alpha, pred in predictions.items():
        labels = pred.argmax(1) if pred.ndim == 2 else pred
        if labels.shape != targets.shape:
            raise ValueError(f"predictions for alpha={alpha!r} cover {labels.shape[0]} samples, targets "
                             f"{targets.shape[0]}")
        hits = (labels == targets).double()
        table[alpha] = {name: 100.0 * hits[idx].mean().item() for name, idx in groups.named().items()}
    frame = pd.DataFrame(table)
    frame.columns.name = "alpha"
    frame.index.name = "group"
    return frame


def summarise_by_group(values: torch.Tensor, groups: MotivationGroups) -> pd.DataFrame:
    """Per group: count, mean, std and quartiles of a per-sample value (claim 3: learned alpha_i by group)."""
    rows = {}
    for name, idx in groups.named().items():
        v = values.detach().double()[idx]
        q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=v.dtype, device=v.device)).tolist()
        rows[name] = {"n": int(v.numel()), "mean": v.mean().item(),
                      "std": v.std().item() if v.numel() > 1 else 0.0,
                      "q25": q[0], "median": q[1], "q75": q[2]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "group"
    return frame
