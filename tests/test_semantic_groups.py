"""Similar / dissimilar sets: semantic groups (method 1), nearest / farthest centroids (method 2), agreement."""
import pytest
import torch

from kdutils.chapters.ls_kd.semantic_groups import (CIFAR100, CIFAR100_COARSE_OF_FINE, FASHION_MNIST, MNIST,
                                                    SemanticGroups, agreement_table, mean_agreement,
                                                    nearest_farthest_sets, semantic_groups, set_agreement)
from kdutils.data.datasets import _IDX_INFO

# Fine -> coarse labels as distributed with CIFAR-100 (per-sample `coarse_labels` of the train file),
# written out here independently of the name table in the module.
CIFAR100_COARSE_REFERENCE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]


def test_fashion_mnist_groups_match_the_loader_and_the_brief():
    assert FASHION_MNIST.class_names == tuple(_IDX_INFO["fashion_mnist"][2])
    names = FASHION_MNIST.class_names
    assert {names[c] for c in FASHION_MNIST.groups["tops"]} == {"T-shirt/top", "Pullover", "Coat", "Shirt"}
    assert {names[c] for c in FASHION_MNIST.groups["footwear"]} == {"Sandal", "Sneaker", "Ankle boot"}
    assert FASHION_MNIST.targets() == (0, 2, 4, 5, 6, 7, 9)  # trouser, dress, bag are never targets
    assert FASHION_MNIST.sets(5) == ((7, 9), (0, 1, 2, 3, 4, 6, 8))  # sandal
    assert FASHION_MNIST.sets(4) == ((0, 2, 6), (1, 3, 5, 7, 8, 9))  # coat
    with pytest.raises(ValueError, match=r"class 3 \(Dress\) cannot be a target: its group 'rest' is a residual"):
        FASHION_MNIST.sets(3)


def test_mnist_groups_partition_the_digits():
    assert MNIST.targets() == (0, 3, 4, 5, 6, 7, 8, 9)
    assert MNIST.sets(9) == ((4, 7), (0, 1, 2, 3, 5, 6, 8))
    assert MNIST.sets(0) == ((6,), (1, 2, 3, 4, 5, 7, 8, 9))


def test_cifar100_coarse_mapping_matches_the_distributed_labels():
    assert list(CIFAR100_COARSE_OF_FINE) == CIFAR100_COARSE_REFERENCE
    assert all(len(m) == 5 for m in CIFAR100.groups.values()) and len(CIFAR100.groups) == 20
    sim, dis = CIFAR100.sets(CIFAR100.class_names.index("maple_tree"))
    assert {CIFAR100.class_names[c] for c in sim} == {"oak_tree", "palm_tree", "pine_tree", "willow_tree"}
    assert len(dis) == 95
    assert semantic_groups("cifar100") is CIFAR100
    with pytest.raises(ValueError, match="no semantic groups for dataset 'svhn'"):
        semantic_groups("svhn")


def test_semantic_groups_validate_the_partition():
    with pytest.raises(ValueError, match=r"class 1 \(b\) is in groups 'x' and 'y'"):
        SemanticGroups("d", ("a", "b", "c"), {"x": (0, 1), "y": (1, 2)})
    with pytest.raises(ValueError, match=r"classes \[2\] belong to no group"):
        SemanticGroups("d", ("a", "b", "c"), {"x": (0, 1)})
    with pytest.raises(ValueError, match="residual names unknown groups"):
        SemanticGroups("d", ("a", "b"), {"x": (0, 1)}, residual=("z",))


# Five classes on a line: 0 at 0, 1 at 1, 2 at 2.5, 3 at 6, 4 at 10.
LINE = torch.tensor([[0.0], [1.0], [2.5], [6.0], [10.0]])


def test_nearest_farthest_sets_hand_values():
    assert nearest_farthest_sets(LINE, 0, 2, 1) == ((1, 2), (4,))
    assert nearest_farthest_sets(LINE, 2, 1, 2) == ((1,), (4, 3))  # from 2.5: 1.5, 2.5, 3.5, 7.5
    tie = torch.tensor([[0.0], [1.0], [-1.0], [5.0]])
    assert nearest_farthest_sets(tie, 0, 1, 1) == ((1,), (3,))  # tie between 1 and 2 -> lower index
    with pytest.raises(ValueError, match="exceeds the 4 other classes"):
        nearest_farthest_sets(LINE, 0, 2, 3)
    with pytest.raises(ValueError, match=r"n_similar must be an int in 1\.\.4"):
        nearest_farthest_sets(LINE, 0, 0, 1)


def test_set_agreement_is_the_fraction_of_the_reference_found():
    assert set_agreement([1, 2, 3, 4], [2, 3, 4, 9, 10]) == 0.75
    assert set_agreement([5], [6]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        set_agreement([], [1])


def test_agreement_table_on_hand_made_centroids():
    groups = SemanticGroups("toy", ("a", "b", "c", "d", "e"), {"g": (0, 1, 2), "h": (3, 4)}, residual=("h",))
    rows = agreement_table(groups, LINE)
    assert [r.target for r in rows] == [0, 1, 2]
    # target 0: similar {1, 2} = its two nearest; dissimilar {3, 4} = its two farthest
    assert (rows[0].nearest, rows[0].farthest) == ((1, 2), (4, 3))
    assert (rows[0].similar_agreement, rows[0].dissimilar_agreement) == (1.0, 1.0)
    # target 2 (at 2.5): distances 2.5, 1.5, 3.5, 7.5 -> nearest two {1, 0}; farthest two {4, 3}
    assert rows[2].similar_agreement == 1.0
    # move class 3 next to class 0: target 0's nearest two become {1, 3}
    moved = LINE.clone()
    moved[3] = 0.5
    rows = agreement_table(groups, moved)
    assert rows[0].nearest == (3, 1) and rows[0].similar_agreement == 0.5
    assert rows[0].farthest == (4, 2) and rows[0].dissimilar_agreement == 0.5
    sim_mean, dis_mean = mean_agreement(rows)
    assert sim_mean == pytest.approx(sum(r.similar_agreement for r in rows) / 3)
    with pytest.raises(ValueError, match="centroids have 4 classes, toy has 5"):
        agreement_table(groups, LINE[:4])


def test_all_sets_feed_the_diffusion_table():
    from kdutils.chapters.ls_kd.diffusion import diffusion_table

    sets = FASHION_MNIST.all_sets()
    assert list(sets) == list(FASHION_MNIST.targets()) and sets[9] == FASHION_MNIST.sets(9)
    g = torch.Generator().manual_seed(0)
    c0 = torch.randn(10, 6, generator=g, dtype=torch.float64)
    rows = diffusion_table(c0, c0 * 3.0, sets)  # a uniform rescaling is no diffusion
    assert len(rows) == 7 and all(abs(r.eta_similar) < 1e-9 and abs(r.eta_dissimilar) < 1e-9 for r in rows)
