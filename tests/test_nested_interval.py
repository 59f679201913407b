"""The two-level (teacher, student seed) interval against a hand computation."""
import math

import pytest

from kdutils.verdicts.nested import nested_interval, nested_paired_difference
from kdutils.verdicts.stats import t_interval


# 3 teachers x 2 student seeds; teacher means 2, 3, 7 (grand mean 4), every seed +-1 around its teacher's mean.
VALUES = {(0, 0): 1.0, (0, 1): 3.0, (1, 0): 2.0, (1, 1): 4.0, (2, 0): 6.0, (2, 1): 8.0}


def test_interval_and_components_match_a_hand_computation():
    res = nested_interval(VALUES)
    # sd of the teacher means = sqrt(((2-4)^2 + (3-4)^2 + (7-4)^2) / 2) = sqrt(7); t_{2, 0.975} = 4.302653
    half = 4.302653 * math.sqrt(7) / math.sqrt(3)
    assert res.interval.mean == pytest.approx(4.0)
    assert res.interval.low == pytest.approx(4.0 - half, abs=1e-5)
    assert res.interval.high == pytest.approx(4.0 + half, abs=1e-5)
    assert res.interval.n == 3
    # MS_within = 6 squared deviations of 1 / (6 - 3) = 2; MS_between = 2 * 14 / 2 = 14; between = (14 - 2) / 2
    assert res.within_var == pytest.approx(2.0)
    assert res.between_var == pytest.approx(6.0)
    assert res.n_outer == 3 and res.n_values == 6


def test_wider_than_the_interval_that_ignores_teachers():
    flat = t_interval(list(VALUES.values()))
    nested = nested_interval(VALUES).interval
    assert nested.high - nested.low > flat.high - flat.low


def test_one_teacher_gives_no_interval():
    res = nested_interval({(0, 0): 1.0, (0, 1): 2.0, (0, 2): 3.0})
    assert not res.interval.estimable and math.isnan(res.between_var)
    assert res.within_var == pytest.approx(1.0)


def test_paired_difference_uses_common_keys_only():
    a = {(0, 0): 5.0, (0, 1): 6.0, (1, 0): 7.0, (1, 1): 9.0, (2, 0): 1.0}
    b = {(0, 0): 4.0, (0, 1): 4.0, (1, 0): 6.0, (1, 1): 6.0}
    res = nested_paired_difference(a, b)
    assert res.outer_means == {0: pytest.approx(1.5), 1: pytest.approx(2.0)}


@pytest.mark.parametrize("bad", [{(0,): 1.0}, {0: 1.0}, {(0, 0): float("nan")}])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        nested_interval(bad)


def test_arms_without_a_common_key_give_an_open_interval_and_a_readable_description():
    """Partly recorded arms may share no (teacher, student) key yet: inconclusive, never a crash."""
    res = nested_paired_difference({(0, 0): 1.0}, {(1, 1): 2.0})
    assert res.n_outer == 0 and res.interval.low == -math.inf and res.interval.high == math.inf
    assert "0 outer x 0 inner" in res.describe("pts")
