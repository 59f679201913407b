"""Diffusion index (Eq. 1) on hand-made centroids, and class centroids."""
import math

import pytest
import torch

from kdutils.chapters.ls_kd.diffusion import centroid_distances, class_centroids, diffusion_index, relative_distances

# Target 0 at the origin; similar classes 1, 2; dissimilar classes 3, 4 (2-D, hand-checkable).
C_T0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [4.0, 0.0], [0.0, 4.0]])
# At T1 class 1 moved halfway to the target and class 4 moved out from 4 to 4.5; the others stayed.
C_T1 = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 1.0], [4.0, 0.0], [0.0, 4.5]])


def test_class_centroids_are_class_means():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    y = torch.tensor([0, 0, 1, 2, 2])
    c = class_centroids(x, y)
    assert c.dtype == torch.float64
    assert torch.equal(c, torch.tensor([[2.0, 3.0], [10.0, 0.0], [1.0, 1.0]], dtype=torch.float64))


def test_class_centroids_refuses_an_empty_class():
    with pytest.raises(ValueError, match=r"classes \[1\] have no samples"):
        class_centroids(torch.zeros(3, 2), torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="num_classes"):
        class_centroids(torch.zeros(3, 2), torch.tensor([0, 2, 2]), num_classes=2)


def test_centroid_distances_hand_values():
    d = centroid_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    expected = torch.tensor([[0, 5, 1], [5, 0, math.sqrt(9 + 9)], [1, math.sqrt(18), 0]], dtype=torch.float64)
    assert torch.allclose(d, expected)
    assert torch.all(torch.diagonal(d) == 0)


def test_relative_distances_hand_values():
    # distances 1, 1, 4, 4 -> sum 10
    assert relative_distances(C_T0, 0, [1, 2, 3, 4]) == pytest.approx({1: 0.1, 2: 0.1, 3: 0.4, 4: 0.4})
    # distances 0.5, 1, 4, 4.5 -> sum 10
    assert relative_distances(C_T1, 0, [1, 2, 3, 4]) == pytest.approx({1: 0.05, 2: 0.1, 3: 0.4, 4: 0.45})


def test_diffusion_index_hand_computed():
    # Relative changes: class 1 0.1 -> 0.05 (-50%), class 2 0 %, class 3 0 %, class 4 0.4 -> 0.45 (+12.5%).
    eta = diffusion_index(C_T0, C_T1, target=0, similar=[1, 2], dissimilar=[3, 4])
    assert eta.eta_similar == pytest.approx(-25.0)
    assert eta.eta_dissimilar == pytest.approx(6.25)
    assert eta.systematic
    # Swapping the roles of the temperatures: 0.05 -> 0.1 is +100 %, 0.45 -> 0.4 is -11.11 %.
    back = diffusion_index(C_T1, C_T0, target=0, similar=[1, 2], dissimilar=[3, 4])
    assert back.eta_similar == pytest.approx(50.0)
    assert back.eta_dissimilar == pytest.approx(-100.0 / 18.0)
    assert not back.systematic


def test_diffusion_index_weighted_identity_forces_opposite_signs():
    """sum_k d0_k * r_k = 0 over the union: the reason eta_s and eta_d are not independent evidence."""
    g = torch.Generator().manual_seed(0)
    c0, c1 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    sim, dis = [1, 2, 3], [4, 5, 6, 7]
    d0 = relative_distances(c0, 0, sim + dis)
    d1 = relative_distances(c1, 0, sim + dis)
    assert sum(d0[k] * (d1[k] - d0[k]) / d0[k] for k in sim + dis) == pytest.approx(0.0, abs=1e-12)


def test_diffusion_index_is_invariant_to_similarity_transforms_of_either_temperature():
    g = torch.Generator().manual_seed(1)
    c0, c1 = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(2))
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    moved = 3.7 * c1 @ q + torch.tensor([1.0, -2.0, 0.5, 9.0], dtype=torch.float64)
    a = diffusion_index(c0, c1, 0, [1, 2], [3, 4, 5])
    b = diffusion_index(c0, moved, 0, [1, 2], [3, 4, 5])
    assert b.eta_similar == pytest.approx(a.eta_similar, abs=1e-9)
    assert b.eta_dissimilar == pytest.approx(a.eta_dissimilar, abs=1e-9)
    same = diffusion_index(c0, 2.0 * c0, 0, [1, 2], [3, 4, 5])  # pure rescaling: no diffusion
    assert same.eta_similar == pytest.approx(0.0, abs=1e-9) and same.eta_dissimilar == pytest.approx(0.0, abs=1e-9)


def test_per_set_normaliser_hand_values_and_its_blind_spot():
    # Per set, classes at equal distance at T0 give an index of exactly 0 whatever happens at T1:
    # S_s: 0.5, 0.5 -> 1/3, 2/3 (-33.3 %, +33.3 %); S_d: 0.5, 0.5 -> 4/8.5, 4.5/8.5 (-1/17, +1/17).
    eta = diffusion_index(C_T0, C_T1, 0, [1, 2], [3, 4], normaliser="per_set")
    assert eta.eta_similar == pytest.approx(0.0, abs=1e-12)
    assert eta.eta_dissimilar == pytest.approx(0.0, abs=1e-12)
    # Unequal T0 distances: S_s = {1 at 1, 2 at 2}: 1/3, 2/3 -> T1 {1 at 1, 2 at 1}: 1/2, 1/2.
    c0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 0.0], [0.0, 5.0]])
    c1 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 0.0], [0.0, 5.0]])
    eta = diffusion_index(c0, c1, 0, [1, 2], [3, 4], normaliser="per_set")
    assert eta.eta_similar == pytest.approx(100.0 * ((0.5 - 1 / 3) / (1 / 3) + (0.5 - 2 / 3) / (2 / 3)) / 2)
    with pytest.raises(ValueError, match="needs >= 2 classes in the similar set"):
        diffusion_index(c0, c1, 0, [1], [3, 4], normaliser="per_set")


def test_diffusion_index_single_similar_class_under_union():
    """The paper's three-class example (one similar, one dissimilar) is meaningful with the union normaliser."""
    c0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])  # d = 1/4, 3/4
    c1 = torch.tensor([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]])  # d = 1/7, 6/7
    eta = diffusion_index(c0, c1, 0, [1], [2])
    assert eta.eta_similar == pytest.approx(100.0 * (1 / 7 - 1 / 4) / (1 / 4))
    assert eta.eta_dissimilar == pytest.approx(100.0 * (6 / 7 - 3 / 4) / (3 / 4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(similar=[1, 0], dissimilar=[3]), "must not contain the target"),
        (dict(similar=[1, 2], dissimilar=[2, 3]), r"\[2\] are in both"),
        (dict(similar=[1, 1], dissimilar=[3]), "lists a class twice"),
        (dict(similar=[], dissimilar=[3]), "at least one class"),
        (dict(similar=[1], dissimilar=[7]), r"class index in 0\.\.4"),
        (dict(similar=[1], dissimilar=[3], normaliser="all"), "unknown normaliser 'all'"),
    ],
)
def test_diffusion_index_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        diffusion_index(C_T0, C_T1, target=0, **kwargs)


def test_diffusion_index_centroid_on_the_target():
    collapsed = C_T1.clone()
    collapsed[1] = collapsed[0]  # class 1 on the target at T1: its relative distance falls by 100 %
    eta = diffusion_index(C_T0, collapsed, 0, [1, 2], [3, 4])
    # T1 distances 0, 1, 4, 4.5 -> 0, 1/9.5, 4/9.5, 4.5/9.5 against 0.1, 0.1, 0.4, 0.4
    assert eta.eta_similar == pytest.approx(100.0 * (-1.0 + (1 / 9.5 - 0.1) / 0.1) / 2)
    with pytest.raises(ValueError, match="at T0 the centroids of classes \\[1\\] coincide"):
        diffusion_index(collapsed, C_T1, 0, [1, 2], [3, 4])


def test_diffusion_table_runs_every_target_with_its_sets():
    from kdutils.chapters.ls_kd.diffusion import diffusion_table

    sets = {0: ([1, 2], [3, 4]), 3: ([4], [1, 2])}
    rows = diffusion_table(C_T0, C_T1, sets)
    assert [r.target for r in rows] == [0, 3]
    assert rows[0].eta_similar == pytest.approx(-25.0)
    # target 3 at (4, 0): T0 distances to 4, 1, 2 = sqrt 32, 3, sqrt 17; T1 = sqrt(16 + 20.25), 3.5, sqrt 17
    d0 = [math.sqrt(32), 3.0, math.sqrt(17)]
    d1 = [math.sqrt(36.25), 3.5, math.sqrt(17)]
    r0, r1 = [d / sum(d0) for d in d0], [d / sum(d1) for d in d1]
    assert rows[1].eta_similar == pytest.approx(100 * (r1[0] - r0[0]) / r0[0])
    assert rows[1].eta_dissimilar == pytest.approx(50 * ((r1[1] - r0[1]) / r0[1] + (r1[2] - r0[2]) / r0[2]))
    with pytest.raises(ValueError, match="sets is empty"):
        diffusion_table(C_T0, C_T1, {})


def test_methods_markdown_states_the_implemented_normaliser():
    from kdutils.chapters.ls_kd.diffusion import METHODS_MARKDOWN

    assert "N = S_s \\cup S_d" in METHODS_MARKDOWN and "\\frac{100}{|S|}" in METHODS_MARKDOWN
