"""Chandrasegaran et al., recipe v3: the per-run analyses that need a checkpoint, recorded in their own experiment
(``ANALYSIS_V3``) so v2's analysis records stay as they are.

Per run: class centroids and class spreads (root mean squared distance to the centroid) of the penultimate
features on the test split *and on the training split* (the paper reports the diffusion index on both; the
students are distilled on the training images), and, for teacher pair 0's teachers and their seed-0 students, the
three-class projections of both kinds (the authors' variant and Müller et al.'s template plane)."""
from __future__ import annotations

from typing import Any

from kdutils.chapters.ls_kd.analysis import _first_per_class, _normalised, _round
from kdutils.chapters.ls_kd.recipes import (EXPERIMENT, NUM_CLASSES, PROJECTION_CLASSES, PROJECTION_TEST_PER_CLASS,
                                            PROJECTION_TRAIN_PER_CLASS)
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore

ANALYSIS_V3 = f"{EXPERIMENT}_analysis_v3"
SPLITS = ("test", "train")


def analysis_v3_config(cfg: RunConfig) -> RunConfig:
    return cfg.with_(experiment=ANALYSIS_V3)


def load_analysis_v3(cfg: RunConfig, store: ResultStore | None = None) -> dict[str, Any] | None:
    rec = (store or ResultStore()).get(analysis_v3_config(cfg))
    return None if rec is None or "skipped" in rec.get("analysis", {}) else rec["analysis"]


def _projections(model, feats_tr, y_tr, feats_te, y_te) -> dict[str, Any]:
    from kdutils.chapters.ls_kd.projection import head_parameters, project_classes, project_mueller

    weight, bias = head_parameters(model)
    i_tr = _first_per_class(y_tr, PROJECTION_CLASSES, PROJECTION_TRAIN_PER_CLASS)
    i_te = _first_per_class(y_te, PROJECTION_CLASSES, PROJECTION_TEST_PER_CLASS)
    view = project_classes(feats_tr[i_tr], y_tr[i_tr], weight, bias, PROJECTION_CLASSES)
    test_view = project_classes(feats_te[i_te], y_te[i_te], weight, bias, PROJECTION_CLASSES, pca=view.pca)
    out = {"classes": list(PROJECTION_CLASSES),
           "authors": {"train_points": _round(view.points.tolist(), 4), "train_labels": view.labels.tolist(),
                       "test_points": _round(test_view.points.tolist(), 4), "test_labels": test_view.labels.tolist()}}
    out["mueller"] = {"train_points": _round(project_mueller(feats_tr[i_tr], weight, PROJECTION_CLASSES).tolist(), 4),
                      "train_labels": y_tr[i_tr].tolist(),
                      "test_points": _round(project_mueller(feats_te[i_te], weight, PROJECTION_CLASSES).tolist(), 4),
                      "test_labels": y_te[i_te].tolist()}
    return out


def model_analysis(cfg: RunConfig, store: ResultStore, projection: bool) -> dict[str, Any]:
    """Centroids and spreads on both splits (and the projections when asked) of run ``cfg``'s checkpoint."""
    import torch

    from kdutils.chapters.ls_kd.diffusion import class_centroids
    from kdutils.chapters.ls_kd.projection import penultimate_features
    from kdutils.chapters.ls_kd.separation import class_spreads
    from kdutils.training import runner

    model = runner.load_model(cfg, store, torch.device("cpu"), progress=False)
    splits = runner.prepare_data(cfg.data)
    out: dict[str, Any] = {}
    feats = {}
    for name in SPLITS:
        part = getattr(splits, name)
        f, y = penultimate_features(model, _normalised(part.x, splits)), part.y.long()
        feats[name] = (f, y)
        out[name] = {"centroids": _round(class_centroids(f, y, NUM_CLASSES).tolist()),
                     "spreads": _round(class_spreads(f, y, NUM_CLASSES).tolist())}
    out["feature_dim"] = int(feats["test"][0].shape[1])
    if projection:
        out["projection"] = _projections(model, *feats["train"], *feats["test"])
    return out


def analyse_units(p, units, store: ResultStore) -> None:
    """Record the v3 analysis of every unit of plan ``p`` in ``units`` that has a record and no analysis yet."""
    import torch

    from kdutils.chapters.ls_kd.recipe_v3 import recipe_v3
    from kdutils.progress import tqdm
    from kdutils.store.provenance import provenance

    r = recipe_v3(p.profile)
    todo = [u for u in units if store.get(analysis_v3_config(u.cfg)) is None and store.get(u.cfg) is not None]
    for u in tqdm(todo, desc="analysis v3", unit="run"):
        rec = store.get(u.cfg)
        assert rec is not None  # `todo` keeps recorded runs only
        if rec["status"] == "diverged":
            analysis: dict[str, Any] = {"skipped": f"run status {rec['status']}"}
        else:
            proj = u.pair == r.teacher_seeds[0] and (u.kind == "teacher" or u.seed == r.student_seeds[0])
            analysis = model_analysis(u.cfg, store, projection=proj)
        store.put(analysis_v3_config(u.cfg), {"status": "ok", "run_key": u.cfg.key(), "analysis": analysis,
                                              "provenance": provenance(torch.device("cpu"))})


__all__ = ["ANALYSIS_V3", "SPLITS", "analyse_units", "analysis_v3_config", "load_analysis_v3", "model_analysis"]
