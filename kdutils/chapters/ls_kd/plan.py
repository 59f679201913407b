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
   (architecture x teacher's ls x tau) gets its own learning rate from a validation grid (``kdutils.sweeps.tuning``);
   the chosen rates are then trained with every seed, students that differ only in tau/seed together
   (``group_runner.run_grouped``). The students see un-augmented images, so each teacher's logits are cached.
3. **Student alone** (hard labels, same architecture and budget): not in the paper's Table 2; it is the
   testable gate (a teacher no better than the student alone has nothing to pass on).
4. **Matched entropy** (claim 4, Supplementary H): for each ``tau`` in ``MATCH_TAUS`` the plain teacher's
   temperature ``tau*`` at which its training-set targets have the same average entropy as the LS teacher's
   at ``tau`` (``kdutils.chapters.ls_kd.target_entropy``, rounded to 0.01), and students of the plain teacher at ``tau*``.
5. **Analysis** (``analyse``): from every final run's checkpoint, the test-set class centroids of the
   penultimate features (diffusion index, Sec. 4 Eq. 1), the Supplementary F projection of three classes
   (seed 0 runs and teachers), and for each teacher the average entropy of its targets per tau, all stored as
   small lists in records of ``ANALYSIS`` (``results/ls_kd_fashion_analysis/``), so the book renders them
   without checkpoints.

Naming: the paper's LS mixture is called ``ls`` here, because ``alpha`` is already kdutils' KD weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdutils.chapters.ls_kd.analysis import analyse_runs, analyse_teacher
from kdutils.chapters.ls_kd.recipes import (MATCH_TAUS, RECIPES, TAUS, _check_model, _data, _kwargs, alone_arm,
                                            alone_config, alone_selection, load_analysis, recipe, student_arm,
                                            student_config, student_selection, teacher_arm, teacher_config,
                                            teacher_selection)
from kdutils.config import RunConfig
from kdutils.gpu.workload import ChapterWork, Work
from kdutils.store.profiles import check_profile, resolve_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import Selection, load_selection, run_selection


def gpu_work(profile: str = "gpu") -> ChapterWork:
    """What `run_all(profile)` trains, in epochs per architecture (for the GPU script's time budget)."""
    r = RECIPES[check_profile(profile)]
    n_all = 60_000 if r.n_train is None else r.n_train
    fit = (n_all - r.val_size) / n_all  # selection runs train on the split minus the validation images
    n_ls = len(r.ls_values)
    teacher = Work(f"ls_kd teacher {r.teacher_model}", r.teacher_model, _data(r), r.batch_size,
                   fixed_epochs=n_ls * (fit * len(r.teacher_lrs) * (r.select_teacher_epochs or r.select_epochs)
                                        + r.teacher_epochs),
                   epochs_per_seed=0, runs_fixed=n_ls * (len(r.teacher_lrs) + 1),
                   model_kwargs=_kwargs(r, r.teacher_model))
    works = [teacher]
    for model in r.student_models:
        arms = n_ls * len(TAUS) + len(MATCH_TAUS) + 1  # distilled arms, matched-entropy arms, alone
        per_seed = arms + 2 * (len(r.student_lrs) - 1)  # + claim 1 at every common rate (both teachers, tau 1)
        works.append(Work(f"ls_kd student {model}", model, _data(r), r.batch_size,
                          fixed_epochs=fit * arms * len(r.student_lrs) * r.select_epochs,
                          epochs_per_seed=per_seed * r.student_epochs, runs_fixed=arms * len(r.student_lrs),
                          runs_per_seed=per_seed, model_kwargs=_kwargs(r, model), grouped=True))
    return ChapterWork("ls_kd", len(r.seeds), min(2, len(r.seeds)), tuple(works))


# ---- the plan -------------------------------------------------------------------------------------------------


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
        from kdutils.training.group_runner import run_grouped

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
    from kdutils.training.group_runner import recorded, run_grouped

    taus = (float(tau),) if tau is not None else taus
    seeds = (int(seed),) if seed is not None else seeds
    store = store or ResultStore()
    p = plan(profile, store, train=True, taus=taus, seeds=seeds, progress=progress)
    # The tau = 1 arms and the student alone first (claims 1 and the gate), the rest after.
    cfgs = p.final_configs()
    first = [c for c in cfgs if c.role == "alone" or (c.role == "student" and c.tau == 1.0)]
    run_grouped(list(p.teachers.values()) + first, store, progress=progress)
    records = recorded(cfgs, run_grouped(cfgs, store, progress=progress))
    if analyse_runs:
        analyse(p, store)
    if tau is None and seed is None:  # the whole chapter: claim 1 at each common rate too, then recipe v3
        run_grouped([c for cfgs_lr in sensitivity_configs(p).values() for c in cfgs_lr], store, progress=progress)
        _run_v3(profile, store, progress)
    return records


def _run_v3(profile: str, store: ResultStore, progress: bool) -> None:
    """Recipe v3 at ``profile`` (where it is defined), in one process; in load-only mode it only checks that v3's
    runs are recorded (its analyses need checkpoints, which the book build does not have)."""
    from kdutils.chapters.ls_kd.recipe_v3 import RECIPES_V3
    from kdutils.training.runner import MissingRunError, load_only

    if profile not in RECIPES_V3:
        return
    if load_only():
        from kdutils.chapters.ls_kd.plan_v3 import build

        p = build(profile, store)
        missing = [u.cfg for u in p.units if store.get(u.cfg) is None]
        if p.missing or missing:
            what = [f"{len(missing)} planned runs"] if missing else []
            what += [f"not yet decided: {', '.join(p.missing)}"] if p.missing else []
            raise MissingRunError(f"recipe v3 at profile {profile!r} is not fully recorded ({'; '.join(what)}); run "
                                  f"python -m kdutils.chapters.ls_kd.run_v3 --profile {profile} --shard 1/2 and 2/2")
        return
    from kdutils.chapters.ls_kd.plan_v3 import run_shard

    run_shard(profile, 0, 1, store, progress=progress)


def run_point(profile: str, ls: float = 0.1, tau: float = 1.0, seed: int = 0, store: ResultStore | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
    """One grid point (``notebooks/ls_kd_point.ipynb``): the two teachers and the student of the ``ls`` teacher at
    ``tau`` and ``seed`` (selections first when missing), with their analysis. Returns the records (teachers
    first). In load-only mode a missing run raises ``MissingRunError``."""
    from kdutils.training.group_runner import recorded, run_grouped

    store = store or ResultStore()
    cfgs = point_configs(profile, ls, tau, seed) if not _load_only() else _point_from_records(profile, ls, tau, seed,
                                                                                              store)
    records = recorded(cfgs, run_grouped(cfgs, store, progress=progress))
    if not _load_only():
        analyse_runs([c for c in cfgs if c.role != "teacher"], store)
    return records


def _load_only() -> bool:
    from kdutils.training.runner import load_only

    return load_only()


def _point_from_records(profile: str, ls: float, tau: float, seed: int, store: ResultStore) -> list[RunConfig]:
    from kdutils.training.runner import MissingRunError

    p = plan(resolve_profile(profile), store, taus=(float(tau),), seeds=(int(seed),))
    arm = student_arm(recipe(p.profile).student_models[0], ls, tau)
    if len(p.teachers) < len(recipe(p.profile).ls_values) or not p.finals.get(arm):
        raise MissingRunError(f"the selections of point ls={ls:g}, tau={tau:g} (profile {p.profile!r}) are not "
                              f"recorded; run `python -m kdutils run ls_kd --profile {p.profile}` (or the sweep of "
                              "notebooks/ls_kd_point.ipynb) first")
    return list(p.teachers.values()) + list(p.finals[arm])


def analyse(p: Plan, store: ResultStore) -> None:
    """Record the analysis of every final run of plan ``p`` that has none yet."""
    for t in p.teachers.values():
        analyse_teacher(t, store, p.teachers)
    analyse_runs([c for cfgs in p.finals.values() for c in cfgs], store)


__all__ = ["Plan", "configs", "gpu_work", "plan", "point_configs", "run_all"]
