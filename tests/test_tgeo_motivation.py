"""The motivation experiment's helpers: teacher-correct split, ST distance, equal ST groups, heatmap tables."""
import math

import pytest
import torch

from kdutils.chapters.tgeo.motivation import (group_accuracy, motivation_groups, student_teacher_distance,
                                              summarise_by_group)


def test_distance_by_hand():
    s = torch.tensor([[0.5, 0.5], [0.1, 0.9]]).log()
    t = torch.tensor([[0.8, 0.2], [0.1, 0.9]]).log()
    torch.testing.assert_close(student_teacher_distance(s, t),
                               torch.tensor([math.sqrt(0.3 ** 2 * 2), 0.0], dtype=torch.float64))


@pytest.mark.parametrize("n_right, n_wrong", [(50, 20), (53, 22)])
def test_groups_are_equal_sorted_and_partition_each_subset(n_right, n_wrong):
    g = torch.Generator().manual_seed(0)
    n = n_right + n_wrong
    y = torch.randint(0, 4, (n,), generator=g)
    teacher = torch.randn(n, 4, generator=g)
    wrong_class = (y + 1) % 4
    teacher[torch.arange(n_right), y[:n_right]] += 10       # the teacher is right on the first n_right
    teacher[torch.arange(n_right, n), wrong_class[n_right:]] += 10  # and wrong on the rest
    student = torch.randn(n, 4, generator=g)
    groups = motivation_groups(student, teacher, y)
    for subset, members in ((groups.correct, torch.arange(n_right)), (groups.incorrect, torch.arange(n_right, n))):
        sizes = [len(part) for part in subset]
        assert len(sizes) == 5 and max(sizes) - min(sizes) <= 1 and sum(sizes) == len(members)
        if len(members) % 5 == 0:
            assert len(set(sizes)) == 1
        assert torch.equal(torch.cat(subset).sort().values, members)
        for lo, hi in zip(subset, subset[1:]):  # ascending ST: g1 the closest to the teacher
            assert groups.distance[lo].max() <= groups.distance[hi].min()
    assert list(groups.named()) == ["g1", "g2", "g3", "g4", "g5", "g'1", "g'2", "g'3", "g'4", "g'5"]


def test_too_few_wrong_predictions_is_a_clear_error():
    y = torch.arange(10) % 2
    teacher = 5 * torch.nn.functional.one_hot(y, 2).float()
    teacher[0] = torch.tensor([0.0, 5.0])  # one teacher error only
    with pytest.raises(ValueError, match=r"D' \(teacher wrong\) has 1 samples, fewer than n_groups=5"):
        motivation_groups(torch.zeros(10, 2), teacher, y)


def test_group_tables_by_hand():
    y = torch.tensor([0, 1, 0, 1])
    teacher = torch.tensor([[5.0, 0], [0, 5.0], [0, 5.0], [5.0, 0]])  # right on 0, 1; wrong on 2, 3
    student = torch.tensor([[5.0, 0], [0, 0], [0, 5.0], [0, 0]])  # ST: 0 and 0.68 within each subset
    groups = motivation_groups(student, teacher, y, n_groups=2)
    assert [g.tolist() for g in groups.correct] == [[0], [1]] and [g.tolist() for g in groups.incorrect] == [[2], [3]]
    preds = {0.1: torch.tensor([0, 0, 0, 1]), 0.9: torch.tensor([[1.0, 0], [0, 1], [1, 0], [1, 0]])}
    table = group_accuracy(preds, y, groups)
    assert list(table.index) == ["g1", "g2", "g'1", "g'2"] and list(table.columns) == [0.1, 0.9]
    assert table[0.1].tolist() == [100.0, 0.0, 100.0, 100.0]
    assert table[0.9].tolist() == [100.0, 100.0, 100.0, 0.0]
    summary = summarise_by_group(torch.tensor([0.2, 0.4, 0.6, 0.8]), groups)
    assert summary["mean"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8]) and summary["n"].tolist() == [1] * 4
