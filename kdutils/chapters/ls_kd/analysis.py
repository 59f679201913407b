"""Chandrasegaran et al.: the analyses that need checkpoints (penultimate projections, centroids, target
entropies), recorded as their own records so the report never needs a checkpoint."""
from __future__ import annotations

import math
from typing import Any

from kdutils.chapters.ls_kd.recipes import (ENTROPY_TAUS, MATCH_TAUS, NUM_CLASSES, PROJECTION_CLASSES,
                                            PROJECTION_TEST_PER_CLASS, PROJECTION_TRAIN_PER_CLASS, TAUS,
                                            analysis_config, load_analysis, recipe, round_tau)
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore



# ---- analysis (needs checkpoints; its results are recorded) ----------------------------------------------------

def _round(values: Any, digits: int = 5) -> Any:
    """Nested lists of floats rounded to ``digits`` significant digits (records stay small)."""
    if isinstance(values, (list, tuple)):
        return [_round(v, digits) for v in values]
    v = float(values)
    return 0.0 if v == 0.0 or not math.isfinite(v) else float(f"{v:.{digits}g}")


def _normalised(x, splits):
    import torch

    xf = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)
    if splits.mean is not None:
        mean = torch.tensor(splits.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(splits.std, dtype=torch.float32).view(1, -1, 1, 1)
        xf = (xf - mean) / std
    return xf


def _first_per_class(y, classes, n):
    import torch

    return torch.cat([(y == c).nonzero().flatten()[:n] for c in classes])


def _model_analysis(cfg: RunConfig, store: ResultStore, projection: bool) -> dict[str, Any]:
    """Test-set centroids of the penultimate features and (optionally) the Supplementary F projection."""
    import torch

    from kdutils.training import runner
    from kdutils.chapters.ls_kd.diffusion import class_centroids
    from kdutils.chapters.ls_kd.projection import head_parameters, penultimate_features, project_classes

    device = torch.device("cpu")
    model = runner.load_model(cfg, store, device, progress=False)
    splits = runner.prepare_data(cfg.data)
    feats = penultimate_features(model, _normalised(splits.test.x, splits))
    y_test = splits.test.y.long()
    out: dict[str, Any] = {"centroids": _round(class_centroids(feats, y_test, NUM_CLASSES).tolist()),
                           "feature_dim": int(feats.shape[1])}
    if projection:
        weight, bias = head_parameters(model)
        idx_tr = _first_per_class(splits.train.y.long(), PROJECTION_CLASSES, PROJECTION_TRAIN_PER_CLASS)
        f_tr = penultimate_features(model, _normalised(splits.train.x[idx_tr], splits))
        view = project_classes(f_tr, splits.train.y.long()[idx_tr], weight, bias, PROJECTION_CLASSES)
        idx_te = _first_per_class(y_test, PROJECTION_CLASSES, PROJECTION_TEST_PER_CLASS)
        test_view = project_classes(feats[idx_te], y_test[idx_te], weight, bias, PROJECTION_CLASSES, pca=view.pca)
        out["projection"] = {
            "classes": list(PROJECTION_CLASSES),
            "train_points": _round(view.points.tolist(), 4), "train_labels": view.labels.tolist(),
            "train_centroids": _round(view.centroids.tolist(), 4),
            "test_points": _round(test_view.points.tolist(), 4), "test_labels": test_view.labels.tolist(),
            "test_centroids": _round(test_view.centroids.tolist(), 4),
        }
    return out


def _teacher_train_logits(cfg: RunConfig, store: ResultStore):
    import torch

    from kdutils.training import runner

    device = torch.device("cpu")
    model = runner.load_model(cfg, store, device, progress=False)
    splits = runner.prepare_data(cfg.data)
    # the students' training inputs (same data config as the teacher's): the cache the students use
    return runner.teacher_logits_for(cfg, model, cfg.data, "train", splits.train.x, splits, device)


def _put_analysis(cfg: RunConfig, store: ResultStore, analysis: dict[str, Any]) -> dict[str, Any]:
    import torch

    from kdutils.store.provenance import provenance

    return store.put(analysis_config(cfg), {"status": "ok", "run_key": cfg.key(), "analysis": analysis,
                                            "provenance": provenance(torch.device("cpu"))})


def analyse_teacher(cfg: RunConfig, store: ResultStore, teachers: dict[float, RunConfig] | None = None) -> None:
    """Record a teacher's centroids, projection and average target entropy per tau; for the LS teacher (ls 0.1)
    also the plain teacher's matched temperatures (needs the plain teacher's checkpoint)."""
    from kdutils.chapters.ls_kd.target_entropy import average_entropy, matching_temperature

    existing = load_analysis(cfg, store)
    needs_match = cfg.label_smoothing == 0.1 and teachers and 0.0 in teachers
    if existing is not None and (not needs_match or "matched" in existing):
        return
    rec = store.get(cfg)
    if rec is None or rec["status"] == "diverged":
        _put_analysis(cfg, store, {"skipped": f"run status {rec and rec['status']}"})
        return
    out = existing or _model_analysis(cfg, store, projection=True)
    logits = _teacher_train_logits(cfg, store)
    out["entropy"] = {f"{t:g}": round(average_entropy(logits, t), 6) for t in sorted(set(ENTROPY_TAUS) | set(TAUS))}
    if needs_match:
        plain = (teachers or {})[0.0]
        plain_rec = store.get(plain)
        if plain_rec is not None and plain_rec["status"] == "ok":
            plain_logits = _teacher_train_logits(plain, store)
            out["matched"] = {f"{t:g}": round_tau(matching_temperature(plain_logits, average_entropy(logits, t),
                                                                       lo=0.05, hi=1e4))
                              for t in MATCH_TAUS}
    _put_analysis(cfg, store, out)


def analyse_runs(cfgs: list[RunConfig], store: ResultStore) -> None:
    """Record the analysis (test-set centroids; the projection for the recipe's first seed) of every run in
    ``cfgs`` that has a record and no analysis yet."""
    for cfg in cfgs:
        if load_analysis(cfg, store) is not None:
            continue
        rec = store.get(cfg)
        if rec is None:
            continue
        if rec["status"] == "diverged":  # a run at chance level still has a model to look at
            _put_analysis(cfg, store, {"skipped": f"run status {rec['status']}"})
            continue
        first_seed = recipe(cfg.profile).seeds[0]
        _put_analysis(cfg, store, _model_analysis(cfg, store, projection=cfg.seed == first_seed))


