"""Müller et al. projection (Supplementary F): basis, projection, bias rows, PCA and the plot helper."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from kdutils.chapters.ls_kd.projection import (PCA2D, head_parameters, penultimate_features, plot_projection,
                                               plot_projection_grid, project, project_classes, project_model,
                                               projection_basis)
from kdutils.models import build_model

# A 4-class head on 4-D features. Classes 2, 0, 3 are projected; class 1 is a decoy with a large bias.
#   class 2: w = (3, 0, 0, 0),      b = 4    -> [w, b] = 5 q1,  q1 = (0.6, 0, 0, 0, 0.8)
#   class 0: w = (0, 4, 3, 0),      b = 0    -> [w, b] = 5 q2,  q2 = (0, 0.8, 0.6, 0, 0)
#   class 3: w = (0.6, 4, 3, 4),    b = 5.8  -> [w, b] = 5 q1 + 5 q2 + 5 q3,  q3 = (-0.48, 0, 0, 0.8, 0.36)
# The span does not contain the bias axis, so other biases give another plane (the authors' bug shows).
W = torch.tensor([[0.0, 4.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0], [0.6, 4.0, 3.0, 4.0]],
                 dtype=torch.float64)
B = torch.tensor([0.0, 7.0, 4.0, 5.8], dtype=torch.float64)
CLASSES = [2, 0, 3]
Q_HAND = torch.tensor([[0.6, 0.0, -0.48], [0.0, 0.8, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 0.8], [0.8, 0.0, 0.36]],
                      dtype=torch.float64)


def test_basis_is_orthonormal_and_equals_gram_schmidt_by_hand():
    q = projection_basis(W, B, CLASSES)
    assert q.shape == (5, 3)
    assert torch.allclose(q.T @ q, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(q, Q_HAND, atol=1e-12)


def test_projection_of_a_feature_equals_the_manual_computation():
    x = torch.tensor([[1.0, 2.0, 3.0, 1.0]])  # [x, 1] = (1, 2, 3, 1, 1)
    # q1 . = 0.6 + 0.8 = 1.4;  q2 . = 1.6 + 1.8 = 3.4;  q3 . = -0.48 + 0.8 + 0.36 = 0.68
    assert torch.allclose(project(x, projection_basis(W, B, CLASSES)),
                          torch.tensor([[1.4, 3.4, 0.68]], dtype=torch.float64), atol=1e-12)


def test_bias_rows_come_from_the_projected_classes_not_from_rows_0_1_2():
    """The three classes' logits are a linear map of the 3-D projection only if the right biases are used."""
    x = torch.tensor([[1.0, 2.0, 3.0, 1.0], [-1.0, 0.5, 2.0, 0.0], [0.3, -4.0, 1.0, 2.0]], dtype=torch.float64)
    logits = x @ W.T + B
    templates = torch.cat([W[CLASSES], B[CLASSES, None]], dim=1)  # (3, D+1)
    q = projection_basis(W, B, CLASSES)
    assert torch.allclose(project(x, q) @ (q.T @ templates.T), logits[:, CLASSES], atol=1e-12)
    # The authors' script pairs the weight rows of CLASSES with the biases of classes 0, 1, 2:
    wrong = torch.cat([W[CLASSES], B[[0, 1, 2], None]], dim=1)
    q_wrong, _ = torch.linalg.qr(wrong.T)
    assert not torch.allclose(project(x, q_wrong) @ (q_wrong.T @ templates.T), logits[:, CLASSES], atol=1e-3)


def test_basis_refuses_dependent_templates_and_bad_classes():
    w = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="linearly dependent"):
        projection_basis(w, torch.tensor([1.0, 2.0, 0.0]), [0, 1, 2])
    with pytest.raises(ValueError, match="3 distinct"):
        projection_basis(W, B, [0, 0, 1])
    with pytest.raises(ValueError, match=r"not an index in 0\.\.3"):
        projection_basis(W, B, [0, 1, 9])


def test_pca2d_is_an_isometry_on_planar_points_and_deterministic():
    g = torch.Generator().manual_seed(0)
    plane, _ = torch.linalg.qr(torch.randn(3, 2, generator=g, dtype=torch.float64))
    pts = torch.randn(50, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    pts3 = pts @ plane.T + torch.tensor([5.0, -1.0, 2.0], dtype=torch.float64)
    pca = PCA2D.fit(pts3)
    out = pca.transform(pts3)
    exact = "donot_use_mm_for_euclid_dist"
    assert torch.allclose(torch.cdist(out, out, compute_mode=exact), torch.cdist(pts3, pts3, compute_mode=exact),
                          atol=1e-9)
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out.mean(dim=0), torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert out[:, 0].var() >= out[:, 1].var()
    assert torch.equal(PCA2D.fit(pts3).components, pca.components)


def _tiny_model():
    torch.manual_seed(0)
    return build_model("resnet8", (1, 12, 12), 5)


def test_head_parameters_and_features_of_a_kdutils_model(one_thread):
    model = _tiny_model()
    x = torch.randn(7, 1, 12, 12)
    w, b = head_parameters(model)
    f = penultimate_features(model, x, batch_size=3)
    assert f.shape == (7, w.shape[1])
    with torch.no_grad():
        model.eval()
        assert torch.allclose(f @ w.T + b, model(x), atol=1e-5)
    with pytest.raises(ValueError, match="no nn.Linear `head`"):
        head_parameters(nn.Sequential(nn.Linear(2, 2)))


def test_project_classes_view_and_validation_reuse(one_thread):
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(60, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(60) % 4
    view = project_classes(feats, labels, W, B, CLASSES, class_names=["c2", "c0", "c3"], per_class=10)
    assert view.points.shape == (30, 2) and view.centroids.shape == (3, 2)
    assert sorted(view.labels.unique().tolist()) == [0, 2, 3]
    # the 2-D centroid is the mean of the class's 2-D points (PCA is affine)
    for j, c in enumerate(CLASSES):
        assert torch.allclose(view.points[view.labels == c].mean(dim=0), view.centroids[j], atol=1e-12)
    # a validation set mapped with the training PCA uses the same plane
    val = project_classes(feats[:20], labels[:20], W, B, CLASSES, pca=view.pca)
    assert val.pca is view.pca
    expected = view.pca.transform(project(feats[:20][labels[:20] == 2], projection_basis(W, B, CLASSES)))
    assert torch.allclose(val.points[val.labels == 2], expected)
    with pytest.raises(ValueError, match="class 3 has no samples"):
        project_classes(feats[labels != 3], labels[labels != 3], W, B, CLASSES)


def test_plot_helpers_draw_one_scatter_per_class_and_the_centroids():
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(4)
    feats = torch.randn(40, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(40) % 4
    view = project_classes(feats, labels, W, B, CLASSES, class_names=["sandal", "sneaker", "coat"])
    ax = plot_projection(view, title="teacher, LS 0.1")
    assert len(ax.collections) == 6  # 3 classes + 3 centroid stars
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sandal", "sneaker", "coat"]
    assert ax.get_title() == "teacher, LS 0.1"
    fig = plot_projection_grid([view, view, view], ["a", "b", "c"], ncols=2)
    assert sum(ax.get_visible() for ax in fig.axes) == 3
    with pytest.raises(ValueError, match="one title per view"):
        plot_projection_grid([view], ["a", "b"])
    plt.close("all")


def test_project_model_matches_features_plus_head(one_thread):
    from kdutils.chapters.ls_kd.diffusion import class_centroids, model_centroids

    model = _tiny_model()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(30, 1, 12, 12, generator=g)
    y = torch.arange(30) % 5
    view = project_model(model, x, y, [1, 3, 4], per_class=4)
    w, b = head_parameters(model)
    keep = torch.isin(y, torch.tensor([1, 3, 4]))
    direct = project_classes(penultimate_features(model, x[keep]), y[keep], w, b, [1, 3, 4], per_class=4)
    assert torch.allclose(view.points, direct.points, atol=1e-9)
    cents = model_centroids(model, x, y, 5)
    assert torch.allclose(cents, class_centroids(penultimate_features(model, x), y, 5))
