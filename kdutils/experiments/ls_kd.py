"""Chandrasegaran et al. (ICML 2022), "Revisiting Label Smoothing and Knowledge Distillation Compatibility:
What was Missing?", scaled to Fashion-MNIST (ImageNet and CUB are not obtainable here).

The chapter's protocol (``run_all``):

1. **Teachers**: one deeper CIFAR-style ResNet per label-smoothing value ``ls`` in {0, 0.1} (0.2 for
   Supplementary J at ``full``), trained with cross-entropy on LS targets
   ``(1 - ls) * NLL + ls * mean_k(-log p_k)`` (the authors' NVIDIA-style LS, ``kdutils.losses.label_smoothing_ce``).
   Each teacher's learning rate is chosen on a validation split held out from the training data.
2. **Students**: a smaller network (at ``cpu`` an MLP with one hidden layer of 64 units, for the CPU budget; at
   ``full`` a smaller ResNet and the teacher's own architecture); **KD only** (no
   cross-entropy term, ``alpha = 1`` in kdutils' convention where ``alpha`` weights the KD term), forward
   KL(P_t || P_s) times ``tau**2`` as in the authors' ``KL_div_Loss``, at ``tau`` in {1, 2, 3, 64}. Every arm
   (architecture x teacher's ls x tau) gets its own learning rate from a validation grid (``kdutils.tuning``);
   the chosen rates are then trained with every seed, students that differ only in tau/seed together
   (``group_runner.run_grouped``). The students see un-augmented images, so each teacher's logits are cached.
3. **Student alone** (hard labels, same architecture and budget): not in the paper's Table 2; it is the
   testable gate (a teacher no better than the student alone has nothing to pass on).
4. **Matched entropy** (claim 4, Supplementary H): for each ``tau`` in ``MATCH_TAUS`` the plain teacher's
   temperature ``tau*`` at which its training-set targets have the same average entropy as the LS teacher's
   at ``tau`` (``kdutils.target_entropy``, rounded to 0.01), and students of the plain teacher at ``tau*``.
5. **Analysis** (``analyse``): from every final run's checkpoint, the test-set class centroids of the
   penultimate features (diffusion index, Sec. 4 Eq. 1), the Supplementary F projection of three classes
   (seed 0 runs and teachers), and for each teacher the average entropy of its targets per tau, all stored as
   small lists in records of ``ANALYSIS`` (``results/ls_kd_fashion_analysis/``), so the book renders them
   without checkpoints.

Naming: the paper's LS mixture is called ``ls`` here, because ``alpha`` is already kdutils' KD weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import DataConfig, RunConfig, TrainConfig
from ..losses import check_smoothing, check_tau
from ..profiles import check_profile, resolve_profile
from ..store import ResultStore
from ..tuning import Selection, load_selection, run_selection, selection_configs

EXPERIMENT = "ls_kd_fashion"
ANALYSIS = "ls_kd_fashion_analysis"
PAPER = {
    "title": "Revisiting Label Smoothing and Knowledge Distillation Compatibility: What was Missing?",
    "authors": "Keshigeyan Chandrasegaran, Ngoc-Trung Tran, Yunqing Zhao, Ngai-Man Cheung",
    "venue": "ICML 2022",
    "arxiv": "2206.14532",
}
#: ImageNet-1K top-1 from the paper's Table 2 A (ResNet-50 teacher -> ResNet-18 student), for the chapter's
#: "paper beside ours" table.
PAPER_TOP1_R18 = {
    (0.0, 1.0): 71.547, (0.1, 1.0): 71.616,
    (0.0, 2.0): 71.349, (0.1, 2.0): 68.428,
    (0.0, 3.0): 69.570, (0.1, 3.0): 66.570,
    (0.0, 64.0): 66.230, (0.1, 64.0): 65.472,
}
PAPER_TEACHER_TOP1 = {0.0: 76.130, 0.1: 76.196}
TAUS = (1.0, 2.0, 3.0, 64.0)
LS_VALUES = (0.0, 0.1)
LS_EXTRA = (0.2,)  # Supplementary J
KD_ALPHA = 1.0  # KD only, as in the paper (weight on the KD term)
DATASET = "fashion_mnist"
NUM_CLASSES = 10
#: The LS teacher's temperatures whose target entropy the plain teacher is matched to (Supplementary H).
MATCH_TAUS = (1.0, 3.0)
#: Temperatures at which each teacher's average target entropy is recorded (Table H.1 analogue).
ENTROPY_TAUS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 64.0)
#: Supplementary F's three classes: two semantically similar (T-shirt/top, shirt) and one not (sneaker).
PROJECTION_CLASSES = (0, 6, 7)
PROJECTION_TRAIN_PER_CLASS = 150  # the authors' counts (training / validation images per class)
PROJECTION_TEST_PER_CLASS = 50


@dataclass(frozen=True)
class Recipe:
    """One profile's scale."""

    n_train: int | None
    n_test: int | None
    val_size: int
    teacher_model: str
    student_models: tuple[str, ...]  # (smaller network[, the teacher's architecture])
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    teacher_lrs: tuple[float, ...]
    student_lrs: tuple[float, ...]
    select_epochs: int  # students' selection runs
    seeds: tuple[int, ...]
    select_teacher_epochs: int = 0  # 0: the same as select_epochs
    ls_values: tuple[float, ...] = LS_VALUES
    teacher_augment: str = "crop2+flip"
    student_augment: str = "none"  # "none" lets the teacher's logits be cached (computed once)
    model_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    notes: str = field(default="", compare=False)


RECIPES = {
    "smoke": Recipe(n_train=1000, n_test=300, val_size=200, teacher_model="resnet8",
                    student_models=("resnet8",), teacher_epochs=2, student_epochs=2, batch_size=128,
                    teacher_lrs=(0.1,), student_lrs=(0.05,), select_epochs=1, seeds=(0, 1),
                    teacher_augment="none", model_kwargs={"resnet8": {"widths": [4, 4, 8, 8]}},
                    notes="seconds, for tests: 1,000 training images, two epochs, one candidate rate, a "
                          "teacher as small as the student"),
    "cpu": Recipe(n_train=20_000, n_test=None, val_size=5_000, teacher_model="resnet8",
                  student_models=("mlp",), teacher_epochs=8, student_epochs=12, batch_size=128,
                  teacher_lrs=(0.03, 0.1, 0.3, 1.0), student_lrs=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0), select_epochs=4,
                  select_teacher_epochs=2, seeds=(0, 1, 2, 3, 4), teacher_augment="none",
                  model_kwargs={"mlp": {"hidden": [64]}},
                  notes="v2, sized for two single-thread processes: teacher ResNet-8 at default widths "
                        "(16-32-64) 8 epochs on 20,000 un-augmented Fashion-MNIST training images, one per LS "
                        "value, the two in parallel; student an MLP with one hidden layer of 64 units (deviation: "
                        "the paper's student is a smaller ResNet; an MLP keeps 11 arms x 5 seeds within the CPU "
                        "budget) 12 epochs on the same images; selection runs on one seed, 2 (teachers) or 4 "
                        "(students) epochs, training split minus 5,000 held-out images; the teacher-architecture "
                        "student is dropped at this scale. Measured on the shared 2-core machine (other training "
                        "processes running beside it): the two teachers with their selection in parallel, 10.0 and "
                        "9.6 minutes of wall time; then all students, their selection, the claim-1 runs at common "
                        "rates and the analysis in one process, 8.5 minutes (7.6 minutes of CPU time): about 28 "
                        "minutes of one thread in all; the teachers' candidate 1.0 was added afterwards (0.3 had been chosen "
                        "at the top of the grid for the LS teacher) and lost for both (2 more minutes)"),
    "full": Recipe(n_train=None, n_test=None, val_size=10_000, teacher_model="resnet56",
                   student_models=("resnet20", "resnet56"), teacher_epochs=200, student_epochs=200,
                   batch_size=128, teacher_lrs=(0.05, 0.1, 0.2), student_lrs=(0.01, 0.05, 0.1),
                   select_epochs=40, seeds=(0, 1, 2), ls_values=LS_VALUES + LS_EXTRA,
                   notes="the paper's schedule length (200 epochs, SGD momentum 0.9, lr / 10 at 40% and 80%) on "
                         "all of Fashion-MNIST with both student architectures and the LS 0.2 teacher "
                         "(Supplementary J), for a GPU"),
}


def recipe(profile: str) -> Recipe:
    return RECIPES[check_profile(profile)]


def _train(r: Recipe, epochs: int, lr: float, augment: str) -> TrainConfig:
    milestones = (max(1, int(0.4 * epochs)), max(1, int(0.8 * epochs))) if epochs >= 5 else ()
    return TrainConfig(epochs=epochs, batch_size=r.batch_size, optimizer="sgd", lr=lr, momentum=0.9,
                       weight_decay=5e-4, schedule="step" if milestones else "none", milestones=milestones,
                       gamma=0.1, augment=augment)


def _data(r: Recipe) -> DataConfig:
    return DataConfig(dataset=DATASET, n_train=r.n_train, n_test=r.n_test)


def _kwargs(r: Recipe, model: str) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in r.model_kwargs.get(model, {}).items()}


def teacher_arm(ls: float) -> str:
    return f"teacher-ls{float(ls):g}"


def student_arm(model: str, ls: float, tau: float) -> str:
    return f"{model}-ls{float(ls):g}-T{float(tau):g}"


def alone_arm(model: str) -> str:
    return f"{model}-alone"


def teacher_config(profile: str, ls: float, lr: float, seed: int = 0) -> RunConfig:
    """The teacher trained with label smoothing ``ls`` (0 = plain cross-entropy)."""
    r = recipe(profile)
    return RunConfig(experiment=EXPERIMENT, role="teacher", model=r.teacher_model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.teacher_epochs, lr, r.teacher_augment),
                     model_kwargs=_kwargs(r, r.teacher_model), label_smoothing=check_smoothing(ls))


def _check_model(r: Recipe, profile: str, model: str) -> None:
    if model not in r.student_models:
        raise ValueError(f"student model {model!r} is not in the {profile} recipe; choose one of: "
                         f"{', '.join(r.student_models)}")


def student_config(profile: str, teacher: RunConfig, model: str, tau: float, lr: float, seed: int = 0
                   ) -> RunConfig:
    """A student distilled from ``teacher`` at ``tau`` with the KD term only (no cross-entropy)."""
    r = recipe(profile)
    _check_model(r, profile, model)
    return RunConfig(experiment=EXPERIMENT, role="student", model=model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment), teacher=teacher,
                     tau=check_tau(tau), alpha=KD_ALPHA, kd_direction="forward", model_kwargs=_kwargs(r, model))


def alone_config(profile: str, model: str, lr: float, seed: int = 0) -> RunConfig:
    """The student architecture trained alone on hard labels (cross-entropy, no LS), same budget."""
    r = recipe(profile)
    _check_model(r, profile, model)
    return RunConfig(experiment=EXPERIMENT, role="alone", model=model, profile=profile, seed=seed,
                     data=_data(r), train=_train(r, r.student_epochs, lr, r.student_augment),
                     model_kwargs=_kwargs(r, model))


def teacher_selection(profile: str, ls: float) -> list[RunConfig]:
    """The learning-rate candidates of one teacher (held-out validation split, shorter runs)."""
    r = recipe(profile)
    return selection_configs(teacher_config(profile, ls, r.teacher_lrs[0]), teacher_arm(ls), r.teacher_lrs,
                             r.select_teacher_epochs or r.select_epochs, r.val_size)


def student_selection(profile: str, teacher: RunConfig, model: str, tau: float) -> list[RunConfig]:
    """The learning-rate candidates of one student arm (architecture x teacher's ls x tau)."""
    r = recipe(profile)
    base = student_config(profile, teacher, model, tau, r.student_lrs[0])
    return selection_configs(base, student_arm(model, teacher.label_smoothing, tau), r.student_lrs,
                             r.select_epochs, r.val_size)


def alone_selection(profile: str, model: str) -> list[RunConfig]:
    r = recipe(profile)
    return selection_configs(alone_config(profile, model, r.student_lrs[0]), alone_arm(model), r.student_lrs,
                             r.select_epochs, r.val_size)


def final_students(profile: str, teacher: RunConfig, lrs: dict[str, float], taus=TAUS) -> list[RunConfig]:
    """Every seed of every student arm of ``teacher``, given the chosen rates ``lrs`` ({arm name: lr})."""
    r = recipe(profile)
    out = []
    for model in r.student_models:
        for tau in taus:
            arm = student_arm(model, teacher.label_smoothing, tau)
            if arm not in lrs:
                raise ValueError(f"no chosen learning rate for arm {arm!r}; run its selection first")
            out += [student_config(profile, teacher, model, tau, lrs[arm], seed) for seed in r.seeds]
    return out


def grid_size(profile: str, ls_values=None, taus=TAUS) -> dict[str, int]:
    """How many runs the chapter needs at ``profile`` (for budgeting before anything is trained)."""
    r = recipe(profile)
    ls_values = r.ls_values if ls_values is None else ls_values
    n_models = len(r.student_models)
    n_arms = len(ls_values) * n_models * len(taus) + len(MATCH_TAUS) * n_models
    return {
        "teacher_selection": len(ls_values) * len(r.teacher_lrs),
        "teachers": len(ls_values),
        "student_selection": (n_arms + n_models) * len(r.student_lrs),
        "students": (n_arms + n_models) * len(r.seeds),
    }


# ---- the plan -------------------------------------------------------------------------------------------------

def round_tau(tau: float) -> float:
    """Matched temperatures are rounded to 0.01 so that their configs (and record names) are stable."""
    return float(round(float(tau), 2))


@dataclass
class Plan:
    """Everything the chapter runs for one profile, as far as the recorded selections determine it.

    ``arms`` maps an arm name to its description: {"kind": "teacher"|"alone"|"student", "model", "ls", "tau",
    "matched": the LS teacher's tau it is matched to (or None)}. ``finals`` maps each arm to one config per
    seed ([] while its rate is unknown)."""

    profile: str
    selections: dict[str, Selection | None]
    selection_runs: dict[str, list[RunConfig]]
    teachers: dict[float, RunConfig]
    finals: dict[str, list[RunConfig]]
    arms: dict[str, dict[str, Any]]
    matched: dict[float, float]  # LS teacher's tau -> plain teacher's tau of equal average entropy

    def missing(self) -> list[str]:
        return [arm for arm, sel in self.selections.items() if sel is None]

    def final_configs(self) -> list[RunConfig]:
        return list(self.teachers.values()) + [c for cfgs in self.finals.values() for c in cfgs]

    def all_configs(self) -> list[RunConfig]:
        return [c for cfgs in self.selection_runs.values() for c in cfgs] + self.final_configs()


def analysis_config(cfg: RunConfig) -> RunConfig:
    """The config under which the analysis of run ``cfg`` is recorded (same key material, other folder)."""
    return cfg.with_(experiment=ANALYSIS)


def load_analysis(cfg: RunConfig, store: ResultStore | None = None) -> dict[str, Any] | None:
    store = store or ResultStore()
    rec = store.get(analysis_config(cfg))
    return None if rec is None else rec.get("analysis")


def matched_taus(plain: RunConfig, smoothed: RunConfig, store: ResultStore) -> dict[float, float]:
    """{LS teacher's tau: plain teacher's tau of equal training-target entropy}, from the teachers' analysis
    records ({} while either is missing)."""
    a_plain, a_ls = load_analysis(plain, store), load_analysis(smoothed, store)
    if not a_plain or not a_ls or "matched" not in a_ls:
        return {}
    return {float(k): float(v) for k, v in a_ls["matched"].items()}


def plan(profile: str, store: ResultStore | None = None, *, train: bool = False, taus=TAUS, seeds=None,
         models=None, ls_values=None, matched: bool = True, progress: bool = True) -> Plan:
    """Resolve the chapter's configs from the recorded selections; with ``train``, run missing selections
    (and the teachers they need, and the teachers' analysis that fixes the matched temperatures) first.
    Without ``train`` nothing is trained: unknown arms stay empty."""
    store = store or ResultStore()
    r = recipe(profile)
    taus = tuple(float(t) for t in taus)
    seeds = r.seeds if seeds is None else tuple(int(s) for s in seeds)
    models = r.student_models if models is None else tuple(models)
    ls_values = r.ls_values if ls_values is None else tuple(float(v) for v in ls_values)
    for m in models:
        _check_model(r, profile, m)
    get = (lambda sels: run_selection(sels, store, progress)) if train else (
        lambda sels: {arm: load_selection(arm, cfgs, store) for arm, cfgs in sels.items()})

    t_runs = {teacher_arm(ls): teacher_selection(profile, ls) for ls in ls_values}
    selections: dict[str, Selection | None] = dict(get(t_runs))
    runs: dict[str, list[RunConfig]] = dict(t_runs)
    arms: dict[str, dict[str, Any]] = {}
    teachers: dict[float, RunConfig] = {}
    for ls in ls_values:
        sel = selections[teacher_arm(ls)]
        arms[teacher_arm(ls)] = {"kind": "teacher", "model": r.teacher_model, "ls": ls, "tau": None, "matched": None}
        if sel is not None:
            teachers[ls] = teacher_config(profile, ls, sel.lr)
    if train and teachers:
        from ..group_runner import run_grouped

        run_grouped(list(teachers.values()), store, progress=progress)
        for t in teachers.values():
            analyse_teacher(t, store, teachers)

    match: dict[float, float] = {}
    if matched and 0.0 in teachers and 0.1 in teachers:
        match = matched_taus(teachers[0.0], teachers[0.1], store)

    student_runs: dict[str, list[RunConfig]] = {}
    for model in models:
        student_runs[alone_arm(model)] = alone_selection(profile, model)
        arms[alone_arm(model)] = {"kind": "alone", "model": model, "ls": None, "tau": None, "matched": None}
        for ls in ls_values:
            for tau in taus:
                arm = student_arm(model, ls, tau)
                arms[arm] = {"kind": "student", "model": model, "ls": ls, "tau": tau, "matched": None}
                if ls in teachers:
                    student_runs[arm] = student_selection(profile, teachers[ls], model, tau)
        for tau_ls, tau_plain in match.items():
            arm = student_arm(model, 0.0, tau_plain)
            if arm not in arms:
                arms[arm] = {"kind": "student", "model": model, "ls": 0.0, "tau": tau_plain, "matched": tau_ls}
                student_runs[arm] = student_selection(profile, teachers[0.0], model, tau_plain)
            else:
                arms[arm]["matched"] = tau_ls
    runs.update(student_runs)
    selections.update(get(student_runs))
    finals: dict[str, list[RunConfig]] = {}
    for arm, desc in arms.items():
        if desc["kind"] == "teacher":
            continue
        sel = selections.get(arm)
        if sel is None:
            selections.setdefault(arm, None)
            finals[arm] = []
        elif desc["kind"] == "alone":
            finals[arm] = [alone_config(profile, desc["model"], sel.lr, s) for s in seeds]
        else:
            finals[arm] = [student_config(profile, teachers[desc["ls"]], desc["model"], desc["tau"], sel.lr, s)
                           for s in seeds]
    return Plan(profile, selections, runs, teachers, finals, arms, match)


def configs(profile: str, store: ResultStore | None = None, **kwargs: Any) -> list[RunConfig]:
    """The chapter's final configs that the recorded selections determine (nothing is trained)."""
    return plan(profile, store, **kwargs).final_configs()


def point_configs(profile: str, ls: float = 0.1, tau: float = 1.0, seed: int = 0, model: str | None = None
                  ) -> list[RunConfig]:
    """The final configs one point of ``notebooks/ls_kd_point.ipynb`` needs (the two teachers, the student
    distilled from the ``ls`` teacher at ``tau``), so the sweep can train all points' students together. Runs
    the selections it depends on if missing."""
    profile = resolve_profile(profile)
    r = recipe(profile)
    model = model or r.student_models[0]
    p = plan(profile, train=True, taus=(float(tau),), seeds=(int(seed),), models=(model,), matched=False)
    arm = student_arm(model, ls, tau)
    return list(p.teachers.values()) + list(p.finals.get(arm, []))


def sensitivity_configs(p: Plan) -> dict[float, list[RunConfig]]:
    """Claim 1 at a common rate: both teachers' tau = 1 students at every rate of the student grid, every seed
    ({lr: configs}; the chosen rates' runs are among them). Per-arm selection on short single-seed runs is noisy,
    so this shows whether the tau = 1 comparison depends on the rates the two arms happened to pick."""
    r = recipe(p.profile)
    if not {0.0, 0.1} <= set(p.teachers):
        return {}
    seeds = sorted({c.seed for cfgs in p.finals.values() for c in cfgs}) or list(r.seeds)
    return {lr: [student_config(p.profile, p.teachers[ls], r.student_models[0], 1.0, lr, s)
                 for ls in (0.0, 0.1) for s in seeds] for lr in r.student_lrs}


def run_all(profile: str = "cpu", taus=TAUS, seeds=None, tau=None, seed=None, store: ResultStore | None = None,
            progress: bool = True, analyse_runs: bool = True) -> list[dict[str, Any]]:
    """Select every arm's lr, run (or load) every final config, then record the analysis of each (centroids,
    projections, target entropies). ``tau``/``seed`` restrict it to one grid point. Returns the final runs'
    records (teachers first)."""
    from ..group_runner import run_grouped

    taus = (float(tau),) if tau is not None else taus
    seeds = (int(seed),) if seed is not None else seeds
    store = store or ResultStore()
    p = plan(profile, store, train=True, taus=taus, seeds=seeds, progress=progress)
    # The tau = 1 arms and the student alone first (claims 1 and the gate), the rest after.
    cfgs = p.final_configs()
    first = [c for c in cfgs if c.role == "alone" or (c.role == "student" and c.tau == 1.0)]
    run_grouped(list(p.teachers.values()) + first, store, progress=progress)
    records = run_grouped(cfgs, store, progress=progress)
    if analyse_runs:
        analyse(p, store)
    if tau is None and seed is None:  # the whole chapter: claim 1 at each common rate too
        run_grouped([c for cfgs_lr in sensitivity_configs(p).values() for c in cfgs_lr], store, progress=progress)
    return records


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

    from .. import runner
    from ..diffusion import class_centroids
    from ..penultimate_projection import head_parameters, penultimate_features, project_classes

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

    from .. import runner

    device = torch.device("cpu")
    model = runner.load_model(cfg, store, device, progress=False)
    splits = runner.prepare_data(cfg.data)
    # the students' training inputs (same data config as the teacher's): the cache the students use
    return runner.teacher_logits_for(cfg, model, cfg.data, "train", splits.train.x, splits, device)


def _put_analysis(cfg: RunConfig, store: ResultStore, analysis: dict[str, Any]) -> dict[str, Any]:
    import torch

    from ..provenance import provenance

    return store.put(analysis_config(cfg), {"status": "ok", "run_key": cfg.key(), "analysis": analysis,
                                            "provenance": provenance(torch.device("cpu"))})


def analyse_teacher(cfg: RunConfig, store: ResultStore, teachers: dict[float, RunConfig] | None = None) -> None:
    """Record a teacher's centroids, projection and average target entropy per tau; for the LS teacher (ls 0.1)
    also the plain teacher's matched temperatures (needs the plain teacher's checkpoint)."""
    from ..target_entropy import average_entropy, matching_temperature

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
        plain = teachers[0.0]
        if store.get(plain) is not None and store.get(plain)["status"] == "ok":
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


def analyse(p: Plan, store: ResultStore) -> None:
    """Record the analysis of every final run of plan ``p`` that has none yet."""
    for t in p.teachers.values():
        analyse_teacher(t, store, p.teachers)
    analyse_runs([c for cfgs in p.finals.values() for c in cfgs], store)


def run_point(profile: str, ls: float = 0.1, tau: float = 1.0, seed: int = 0, store: ResultStore | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
    """One grid point (``notebooks/ls_kd_point.ipynb``): the two teachers and the student of the ``ls`` teacher at
    ``tau`` and ``seed`` (selections first when missing), with their analysis. Returns the records (teachers
    first). In load-only mode a missing run raises ``MissingRunError``."""
    from ..group_runner import run_grouped

    store = store or ResultStore()
    cfgs = point_configs(profile, ls, tau, seed) if not _load_only() else _point_from_records(profile, ls, tau, seed,
                                                                                              store)
    records = run_grouped(cfgs, store, progress=progress)
    if not _load_only():
        analyse_runs([c for c in cfgs if c.role != "teacher"], store)
    return records


def _load_only() -> bool:
    from ..runner import load_only

    return load_only()


def _point_from_records(profile: str, ls: float, tau: float, seed: int, store: ResultStore) -> list[RunConfig]:
    from ..runner import MissingRunError

    p = plan(resolve_profile(profile), store, taus=(float(tau),), seeds=(int(seed),))
    arm = student_arm(recipe(p.profile).student_models[0], ls, tau)
    if len(p.teachers) < len(recipe(p.profile).ls_values) or not p.finals.get(arm):
        raise MissingRunError(f"the selections of point ls={ls:g}, tau={tau:g} (profile {p.profile!r}) are not "
                              f"recorded; run `python -m kdutils run ls_kd --profile {p.profile}` (or the sweep of "
                              "notebooks/ls_kd_point.ipynb) first")
    return list(p.teachers.values()) + list(p.finals[arm])


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list:
    """One Verdict per claim (claims 1-4 and the practitioner rule, the scorecard's order), from the records only
    (nothing is trained); the rules are in ``ls_kd_report``."""
    from .ls_kd_report import chapter_verdicts as verdicts

    return verdicts(check_profile(profile), store)


__all__ = ["ANALYSIS", "chapter_verdicts", "EXPERIMENT", "PAPER", "PAPER_TOP1_R18", "RECIPES", "TAUS", "Plan", "analyse",
           "analyse_runs", "configs", "load_analysis", "plan", "point_configs", "run_all", "run_point"]
