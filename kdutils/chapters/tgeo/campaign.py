"""The cross-fitted recipe as one resumable command, split over disjoint processes, with a dry run.

    python -m kdutils.chapters.tgeo.campaign --profile cpu --dry-run           # the plan and its cost
    python -m kdutils.chapters.tgeo.campaign --profile cpu --shard 1/2         # process 1
    python -m kdutils.chapters.tgeo.campaign --profile cpu --shard 2/2         # process 2
    python -m kdutils.chapters.tgeo.campaign --profile cpu --gate-only         # stop after the room gate
    python -m kdutils.chapters.tgeo.campaign --profile cpu --attempt 1 --dry-run   # an older attempt's plan

``--attempt`` names the recipe's attempt (`recipe_cf.ATTEMPTS`; default the newest, `recipe_cf.LATEST`): 1 the
cross-fitted teachers, 2 the held-out teacher (`heldout`). The library functions take `attempt` too (default 1,
so every call that predates attempt 2 plans exactly what it did).

(`kdutils.sweeps.shards`; the old spelling ``--part K --of N``, K from 0, still works: it is ``--shard K+1/N``.)

Stages, each waiting for the records of the one before (the other process may be training them):
0 the teacher's lr candidates; 1 the cross-fitted teachers (attempt 2: the held-out teacher); 2 every arm's lr
(and f_w-rate) candidates, the convolutional students' lr candidates (attempt 2: every other student's lr
candidates for alone and every vanilla alpha); 3 the room gate: for every student of the recipe (the main MLP, each
capacity width, each convolutional student) the two arms the KD-room gate reads, the student alone and vanilla KD
at the alpha chosen on validation, every seed; 4 the finals' other arms (TGeo-KD, baselines, controls, the other
vanilla alphas, the motivation experiment with the main student) only for the students whose room gate passes
(`gate`; a failed gate makes their claims "not testable at this scale"), unless ``--force`` (give it to every
shard, or the shards deal different lists). The gate arms are final configs: their keys are those the finals
always had. Within a stage the items are dealt to the processes by
estimated cost (longest first, to the least-loaded), the same deal in every process, so they train disjoint
runs. Finished records are loaded, not retrained: kill and restart at will.

Costs are estimated from measured per-image-epoch wall times of recorded runs (`measured_rates`); the medians,
the longest-first deal and the per-shard line are the core's (`kdutils.sweeps.cost`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Collection

from kdutils.chapters.tgeo import gate as gt
from kdutils.chapters.tgeo import recipe_cf as rc
from kdutils.chapters.tgeo.plan import MOTIVATION_ALPHAS
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.cost import RateSamples, balance, hours, per_shard, seconds_per_image_epoch
from kdutils.sweeps.shards import Shard, command_parser, shard_of
from kdutils.sweeps.tuning import _rank, validation_view

__all__ = ["FINALS", "GATE", "Item", "Rates", "choose_candidate", "deal", "dry_run", "final_configs", "main",
           "measured_rates", "repo_results", "resolved", "room_gates", "room_preview", "run_campaign", "stage_items"]

STAGES = ("teacher lr", "teachers", "student selections", "room gate", "finals")
GATE, FINALS = 3, 4  # stage numbers
CAPACITY_ARMS = ("alone", "VANILLA", "tgeo_both")  # VANILLA: the vanilla arm chosen on validation
HETERO_ARMS = ("alone", "VANILLA", "tgeo_both")


@dataclass(frozen=True)
class Rates:
    """Measured seconds per image-epoch: plain conv teacher, MLP student (KD), conv student, and the TGeo step's
    cost relative to a plain KD step (all from records' wall_time_s / (n_train x epochs))."""

    teacher: float
    mlp: float
    conv_student: float
    tgeo_ratio: float
    source: str


def _per_image_epoch(rec: dict) -> float | None:
    c = rec.get("config") or {}
    return seconds_per_image_epoch(rec.get("wall_time_s"), (c.get("train") or {}).get("epochs"), rec.get("n_train"))


def repo_results() -> ResultStore:
    """The committed records (results/ of this checkout), whatever KDUTILS_RESULTS says: the rates are measured
    there even when a run writes elsewhere (a scratch folder)."""
    from pathlib import Path

    return ResultStore(Path(__file__).resolve().parents[3] / "results")


def measured_rates(store: ResultStore | None = None) -> Rates:
    """Median per-image-epoch wall times of this experiment's first-recipe cpu records (ResNet-8 teacher, MLP-64
    students, TGeo arms) and of any experiment's LeNet-5 cpu records (the conv student)."""
    store = store or repo_results()
    samples: RateSamples[str] = RateSamples()
    for exp in sorted(p.name for p in store.root.iterdir() if p.is_dir()) if store.root.exists() else []:
        for rec in store.records(exp):
            c = rec.get("config") or {}
            if c.get("profile") != "cpu" or (v := _per_image_epoch(rec)) is None:
                continue
            role, model = str(c.get("role", "")), c.get("model")
            if exp == rc.EXPERIMENT and model == "resnet8" and "teacher" in role and not c.get("model_kwargs"):
                samples.add("teacher", v)
            elif exp == rc.EXPERIMENT and model == "mlp" and "tgeo" in role:
                samples.add("tgeo", v)
            elif exp == rc.EXPERIMENT and model == "mlp":
                samples.add("mlp", v)
            elif model == "lenet5":
                samples.add("conv", v)
    kinds = ("teacher", "mlp", "tgeo", "conv")
    med = samples.medians()
    missing = [k for k in kinds if k not in med]
    if missing:
        raise ValueError(f"no cpu records to measure {missing} from under {store.root}; the estimate needs them")
    return Rates(med["teacher"].seconds, med["mlp"].seconds, med["conv"].seconds,
                 med["tgeo"].seconds / med["mlp"].seconds,
                 f"medians over {', '.join(f'{med[k].runs} {k}' for k in kinds)} cpu records")


@dataclass
class Item:
    """One unit of work: the configs it records, how to run it, and its estimated cost (core-seconds)."""

    name: str
    configs: list[RunConfig]
    run: Callable[[ResultStore], Any]
    cost: float


# ---- resolving the plan from the records ---------------------------------------------------------------------
def choose_candidate(cfgs: list[RunConfig], store: ResultStore) -> RunConfig | None:
    """The candidate with the best validation view (tuning's order: val accuracy, val NLL, lower lr; f_w's rate
    breaks what is left, lower first), or None while one is missing."""
    recs = [store.get(c) for c in cfgs]
    recorded = [r for r in recs if r is not None]
    if len(recorded) < len(recs):  # one is missing
        return None
    def key(i: int):
        f = (cfgs[i].model_kwargs.get("arm_spec") or {}).get("fusion_lr") or 0.0
        return (*_rank(validation_view(recorded[i])), f)
    return cfgs[min(range(len(cfgs)), key=key)]


@dataclass
class Resolved:
    """What the records have decided so far (None: not yet, placeholders are used for the cost estimate)."""

    teacher_lr: float | None
    chosen: dict[str, RunConfig | None]  # arm -> chosen candidate (main student), "het:<model>" -> conv alone,
    #                                       "<student>:<arm>" -> another student's own choice (own_selections)
    vanilla: str | None
    attempt: int = 1


def other_students(r: rc.CrossFitRecipe) -> list[tuple[str, str | None, dict]]:
    """(name as `gate.students` gives it, model or None for the recipe's MLP, model kwargs) of every student
    but the main one."""
    return ([("cap:" + "-".join(map(str, kw.get("hidden", []))), None, kw) for kw in r.capacity]
            + [(f"het:{m}", m, kw) for m, kw in r.hetero])


OWN_ARMS = ("alone", *rc.VANILLA_CF)  # the arms another student selects its own lr for (own_selections)


def _own_candidates(profile: str, t0: RunConfig, r: rc.CrossFitRecipe) -> dict[str, list[RunConfig]]:
    """"<student>:<arm>" -> that student's lr candidates: with `own_selections` every other student's alone and
    vanilla arms; else the conv students' alone arm only (attempt 1)."""
    out = {}
    for tag, model, kw in other_students(r):
        if not r.own_selections and model is None:
            continue
        for arm in OWN_ARMS if r.own_selections else ("alone",):
            out[f"{tag}:{arm}"] = rc.selection_candidates(profile, t0, arm, model=model, model_kwargs=kw, tag=f"{tag}:")
    return out


def resolved(profile: str, store: ResultStore, attempt: int = 1) -> Resolved:
    r = rc.cf_recipe(profile, attempt)
    t = choose_candidate(rc.teacher_selection(profile, attempt), store)
    lr = None if t is None else t.train.lr
    t0 = rc.teacher_config(profile, lr if lr is not None else r.teacher_lrs[0], attempt)
    chosen: dict[str, RunConfig | None] = {}
    if lr is not None:
        chosen = {a: choose_candidate(rc.selection_candidates(profile, t0, a), store) for a in rc.CF_ARMS}
        for name, cands in _own_candidates(profile, t0, r).items():
            chosen[name] = choose_candidate(cands, store)
        for model, _ in r.hetero:
            chosen[f"het:{model}"] = chosen[f"het:{model}:alone"]
    vanilla = None
    if all(chosen.get(a) is not None for a in rc.VANILLA_CF):
        views = {a: validation_view(_chosen_record(store, chosen[a])) for a in rc.VANILLA_CF}
        vanilla = min(views, key=lambda a: _rank(views[a]))
    return Resolved(lr, chosen, vanilla, attempt)


def _chosen_record(store: ResultStore, cfg: RunConfig | None) -> dict[str, Any]:
    """The record of a chosen candidate; the callers pass only choices already made (`choose_candidate` chooses
    only once every candidate is recorded)."""
    assert cfg is not None, "the candidate is not chosen yet"
    record = store.get(cfg)
    assert record is not None, f"no finished record for {cfg.key()}"
    return record


# ---- stages -------------------------------------------------------------------------------------------------
def _n(r: rc.CrossFitRecipe) -> int:
    return r.n_train or 50_000


def _student_cost(cfg: RunConfig, rates: Rates, n: int) -> float:
    spec = cfg.model_kwargs.get("arm_spec") or {}
    if cfg.model == "mlp":
        width = max([*cfg.model_kwargs.get("hidden", [64]), 64])
        per = rates.mlp * width / 64
    else:
        per = rates.conv_student
    if spec.get("rule") == "tgeo" and spec.get("fw_train") == "bilevel":
        per *= rates.tgeo_ratio
    return per * n * cfg.train.epochs


def stage_items(profile: str, stage: int, store: ResultStore, rates: Rates,
                students: Collection[str] | None = None, attempt: int = 1) -> list[Item]:
    """The items of one stage as far as the records resolve them (placeholder rates where not yet chosen); the
    finals' only for `students` (`gate.students` names; None: every student)."""
    from kdutils.chapters.tgeo.crossfit import part_configs, run_part
    from kdutils.chapters.tgeo.heldout import run_pool_teacher
    from kdutils.chapters.tgeo.runs import run_arm, run_motivation
    from kdutils.training import runner

    r = rc.cf_recipe(profile, attempt)
    n = _n(r)
    res = resolved(profile, store, attempt)
    t0 = rc.teacher_config(profile, res.teacher_lr if res.teacher_lr is not None else r.teacher_lrs[0], attempt)

    def arm_item(name: str, c: RunConfig) -> Item:
        return Item(name, [c], lambda s: run_arm(c, None, s, progress=False), _student_cost(c, rates, n))

    # functools.partial, not a lambda with a default: the type checker cannot infer such a lambda's type
    if stage == 0:
        return [Item(f"teacher lr {c.train.lr:g}", [c], partial(runner.run, c, progress=False),
                     rates.teacher * n * c.train.epochs) for c in rc.teacher_selection(profile, attempt)]
    if stage == 1 and r.teacher_logits == "heldout":
        return [Item(t0.role, [t0], lambda s: run_pool_teacher(t0, s, progress=False),
                     rates.teacher * r.teacher_pool * t0.train.epochs)]
    if stage == 1:
        return [Item(p.role, [p], partial(run_part, p, progress=False),
                     rates.teacher * n * (r.k_folds - 1) / r.k_folds * p.train.epochs) for p in part_configs(t0)]
    if stage == 2:
        cands = [c for a in rc.CF_ARMS for c in rc.selection_candidates(profile, t0, a)]
        cands += [c for cs in _own_candidates(profile, t0, r).values() for c in cs]
        return [arm_item(f"{c.role} lr {c.train.lr:g}", c) for c in cands]
    if stage not in (GATE, FINALS):
        raise ValueError(f"stage must be 0..{len(STAGES) - 1}, got {stage!r}")
    by_student = _final_items(profile, res, t0, rates, n, arm_item, run_motivation)
    if students is not None and (unknown := set(students) - set(by_student)):
        raise ValueError(f"unknown students {sorted(unknown)}; the recipe's are {list(by_student)}")
    return [it for name, (gate_items, rest) in by_student.items()
            for it in (gate_items if stage == GATE else rest if students is None or name in students else [])]


def _rates_of(res: Resolved, arm: str, r: rc.CrossFitRecipe) -> tuple[float, float | None]:
    c = res.chosen.get(arm)
    if c is None:
        return r.student_lrs[0], None
    return c.train.lr, (c.model_kwargs["arm_spec"] or {}).get("fusion_lr")


def _own_rates(res: Resolved, tag: str, arm: str, vanilla: str, r: rc.CrossFitRecipe) -> tuple[float, float | None]:
    """(lr, f_w rate) of another student's arm under `own_selections`: its own choice for alone and vanilla; its
    TGeo arm the lr of its own vanilla choice and the main student's f_w rate."""
    own = res.chosen.get(f"{tag}:{arm if arm in OWN_ARMS else vanilla}")
    lr = own.train.lr if own is not None else r.student_lrs[0]
    return lr, None if arm in OWN_ARMS else _rates_of(res, arm, r)[1]


def final_configs(profile: str, res: Resolved, t0: RunConfig) -> dict[str, Any]:
    """Every final config by what it is for: "main" arm -> seed -> cfg; "capacity" tag -> arm -> seed -> cfg;
    "hetero" model -> arm -> seed -> cfg; "motivation" seed -> (pre, {alpha: continued}). Arms named by the
    vanilla arm chosen on validation where the plan says VANILLA (the first vanilla arm until it is chosen).
    The attempt is the teacher's (`recipe_cf.attempt_of`)."""
    r = rc.cf_recipe(profile, rc.attempt_of(t0))
    vanilla = res.vanilla or rc.VANILLA_CF[0]
    out: dict[str, Any] = {"main": {}, "capacity": {}, "hetero": {}, "motivation": {}}
    for arm in rc.CF_ARMS:
        lr, f = _rates_of(res, arm, r)
        out["main"][arm] = {s: rc.student_config(profile, t0, arm, lr, s, fusion_lr=f) for s in r.seeds}
    lr05, _ = _rates_of(res, "vanilla_a0.5", r)
    for s in r.seeds:
        pre = rc.student_config(profile, t0, "vanilla_a0.5", lr05, s, role="motivation_pre",
                                epochs=r.motivation_pre_epochs)
        out["motivation"][s] = (pre, {a: rc.student_config(profile, t0, "vanilla_a0.5", lr05, s,
                                                           role=f"motivation_a{a:g}", epochs=r.motivation_epochs,
                                                           alpha=a) for a in MOTIVATION_ALPHAS})
    for kw in r.capacity:
        tag = "cap:" + "-".join(map(str, kw.get("hidden", [])))
        out["capacity"][tag] = {}
        for arm in CAPACITY_ARMS:
            a = vanilla if arm == "VANILLA" else arm
            lr, f = _own_rates(res, tag, a, vanilla, r) if r.own_selections else _rates_of(res, a, r)
            out["capacity"][tag][a] = {s: rc.student_config(profile, t0, a, lr, s, fusion_lr=f, model_kwargs=kw,
                                                            role=f"{tag}:{a}") for s in r.seeds}
    for model, kw in r.hetero:
        c = res.chosen.get(f"het:{model}")
        lr = c.train.lr if c is not None else r.student_lrs[0]
        out["hetero"][model] = {}
        for arm in HETERO_ARMS:
            a = vanilla if arm == "VANILLA" else arm
            _, f = _rates_of(res, a, r)
            if r.own_selections:
                lr, f = _own_rates(res, f"het:{model}", a, vanilla, r)
            out["hetero"][model][a] = {s: rc.student_config(profile, t0, a, lr, s, fusion_lr=f, model=model,
                                                            model_kwargs=kw, role=f"het:{model}:{a}") for s in r.seeds}
    return out


def _final_items(profile, res, t0, rates, n, arm_item, run_motivation) -> dict[str, tuple[list[Item], list[Item]]]:
    """Student (`gate.students`) -> (its room-gate items, its other finals); the motivation experiment goes with
    the main student (it trains that student, and its records at a scale without room would be orphaned when the
    scale changes)."""
    fc = final_configs(profile, res, t0)
    vanilla = res.vanilla or rc.VANILLA_CF[0]
    prefix = {gt.MAIN: "", **{t: f"{t} " for t in fc["capacity"]}, **{f"het:{m}": f"{m} " for m in fc["hetero"]}}
    out: dict[str, tuple[list[Item], list[Item]]] = {}
    for name, arms in gt.students(fc).items():
        gate_arms = gt.gate_arms(arms, vanilla)
        gate_items: list[Item] = []
        rest: list[Item] = []
        for a, by in arms.items():
            (gate_items if a in gate_arms else rest).extend(arm_item(f"{prefix[name]}{a} seed {s}", c)
                                                           for s, c in by.items())
        out[name] = (gate_items, rest)
    for s, (pre, cont) in fc["motivation"].items():
        cost = sum(_student_cost(c, rates, n) for c in [pre, *cont.values()])
        out[gt.MAIN][1].append(Item(f"motivation seed {s}", [pre, *cont.values()],
                                    partial(run_motivation, pre, cont, progress=False), cost))
    return out


def room_gates(profile: str, store: ResultStore, attempt: int = 1) -> list[gt.StudentGate] | None:
    """Every student's room gate from the records (None while the selections are not recorded: the gate arms'
    configs are not decided yet)."""
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None or res.vanilla is None:
        return None
    return gt.room_gates(final_configs(profile, res, rc.teacher_config(profile, res.teacher_lr, attempt)),
                         res.vanilla, store)


def deal(items: list[Item], parts: int) -> list[list[Item]]:
    """Longest first, each to the least-loaded part (ties: lowest part; `kdutils.sweeps.cost.balance`); the same
    deal in every process."""
    if not (isinstance(parts, int) and parts >= 1):
        raise ValueError(f"parts must be a positive int, got {parts!r}")
    return balance(items, parts, lambda i: i.cost, lambda i: i.name)


def _recorded(items: list[Item], store: ResultStore) -> bool:
    return all(store.get(c) is not None for it in items for c in it.configs)


def gated_students(gates: list[gt.StudentGate], force: bool = False) -> list[str]:
    """The students whose finals run: those whose room gate passes, or (`force`) every student."""
    return [x.student for x in gates if force or x.passed]


def _gate_report(gates: list[gt.StudentGate], force: bool) -> str:
    run = gated_students(gates, force)
    head = (f"KD-room gate (test accuracy, vanilla KD at the alpha chosen on validation minus the student alone, paired "
            f"over seeds, 95% interval wholly above +{gt.ROOM_MARGIN:g} pts):")
    if not all(x.decided for x in gates):
        tail = "the finals wait until every student's gate runs are recorded"
    elif run:
        tail = "finals for: " + ", ".join(run) + (" (--force: every student, whatever its gate)" if force else "")
    else:
        tail = "no student's gate passes: the finals' other arms are not run at this scale (--force runs them anyway)"
    return "\n".join([head, *[f"  {x.describe()}" for x in gates], tail])


def run_campaign(profile: str = "cpu", part: int = 0, of: int = 1, store: ResultStore | None = None,
                 rates: Rates | None = None, poll_s: float = 30.0, max_wait_s: float = 6 * 3600.0,
                 log: Callable[[str], None] = print, force: bool = False,
                 last_stage: int = FINALS, attempt: int = 1) -> list[gt.StudentGate] | None:
    """Run this process's share of every stage up to `last_stage`, waiting at each stage for the other processes'
    records. Before the finals, every student's room gate is read from the records and logged; the finals run only
    for the students whose gate passes (every student with `force`). Returns the gates (None if not reached)."""
    from kdutils.progress import tqdm

    if not (0 <= part < of):
        raise ValueError(f"need 0 <= part < of, got part={part}, of={of}")
    if last_stage not in range(len(STAGES)):
        raise ValueError(f"last_stage must be 0..{len(STAGES) - 1}, got {last_stage!r}")
    store = store or ResultStore()
    rates = rates or measured_rates()
    gates = None
    for stage, name in enumerate(STAGES[:last_stage + 1]):
        waited = 0.0
        while stage and not _recorded(stage_items(profile, stage - 1, store, rates, attempt=attempt), store):
            if waited >= max_wait_s:
                raise TimeoutError(f"stage {stage - 1} ({STAGES[stage - 1]}) is still not recorded after "
                                   f"{waited:.0f} s; is the other process running?")
            log(f"waiting for stage {stage - 1} ({STAGES[stage - 1]}) records from the other process(es)")
            time.sleep(poll_s)
            waited += poll_s
        students = None
        if stage == FINALS:
            gates = room_gates(profile, store, attempt) or []
            log(_gate_report(gates, force))
            students = gated_students(gates, force)
            if not students:
                return gates
        mine = deal(stage_items(profile, stage, store, rates, students, attempt), of)[part]
        for it in tqdm(mine, desc=f"stage {stage}: {name} (shard {Shard.at(part, of)})"):
            it.run(store)
        if stage == GATE and last_stage == GATE:  # as far as recorded: other shards may still be training theirs
            gates = room_gates(profile, store, attempt) or []
            log(_gate_report(gates, force))
    return gates


def dry_run(profile: str = "cpu", of: int = 2, store: ResultStore | None = None, rates: Rates | None = None,
            force: bool = False, attempt: int = 1) -> str:
    """The plan: items and estimated core-hours per stage and per process, from measured rates; once the gate
    stage is recorded, each student's room gate and the finals of the students it lets through."""
    store = store or ResultStore()
    rates = rates or measured_rates()
    r = rc.cf_recipe(profile, attempt)
    lines = [f"TGeo-KD cross-fitted recipe, attempt {attempt} ({rc.ATTEMPTS[attempt][0]}), profile {profile}: "
             f"{r.notes}",
             f"rates ({rates.source}): teacher {1e6 * rates.teacher:.0f} us, MLP-64 student {1e6 * rates.mlp:.1f} us, "
             f"conv student {1e6 * rates.conv_student:.0f} us per image-epoch; TGeo step x{rates.tgeo_ratio:.2f}",
             f"power: {rc.power_summary()}"]
    totals = [0.0] * of
    gates = room_gates(profile, store, attempt)
    decided = gates is not None and all(x.decided for x in gates)
    for stage, name in enumerate(STAGES):
        students, note = None, ""
        if stage == FINALS:
            if decided and gates is not None:
                students = gated_students(gates, force)
                note = f" (for {', '.join(students) or 'no student'}: {'--force' if force else 'the room gate'})"
            else:
                note = " (every student's; each runs only if its room gate passes, or with --force)"
        items = stage_items(profile, stage, store, rates, students, attempt)
        shares = [sum(i.cost for i in d) for d in deal(items, of)]
        done = sum(1 for i in items if all(store.get(c) is not None for c in i.configs))
        totals = [a + b for a, b in zip(totals, shares)]
        lines.append(f"stage {stage} {name}{note}: {len(items)} items ({done} recorded), "
                     f"{sum(i.cost for i in items) / 3600:.2f} core-h; per process: " + per_shard(shares))
    lines.append(f"total {sum(totals) / 3600:.2f} core-hours; wall about {hours(max(totals))} in {of} "
                 "single-thread processes (each run's recorded wall time: training and evaluation; process start, "
                 "data loading and the waits at stage barriers come on top)")
    lines.append(room_preview(profile, store, attempt))
    if gates is not None:
        lines.append(_gate_report(gates, force))
    cmd = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m kdutils.chapters.tgeo.campaign"
    lines += [f"  {cmd} --profile {profile} --attempt {attempt} --shard {k}" for k in Shard.every(of)]
    lines.append(f"  {cmd} --profile {profile} --attempt {attempt} --gate-only   # the room-gate stage only "
                 "(with --shard K/N beside "
                 "the others)")
    return "\n".join(lines)


def room_preview(profile: str, store: ResultStore, attempt: int = 1) -> str:
    """Once the selections are recorded: the best vanilla arm's and the student alone's validation accuracy
    (seed 0, selection runs): an early look at whether KD has room, not the gate (that is judged on test, paired
    over the finals' seeds)."""
    res = resolved(profile, store, attempt)
    alone = res.chosen.get("alone")
    if res.vanilla is None or alone is None:
        return "KD room preview: the selections are not recorded yet"
    v = validation_view(_chosen_record(store, res.chosen[res.vanilla]))["val_accuracy"]
    a = validation_view(_chosen_record(store, alone))["val_accuracy"]
    return (f"KD room preview (validation, seed 0, selection runs): {res.vanilla} {100 * v:.2f}% vs alone "
            f"{100 * a:.2f}%: {100 * (v - a):+.2f} pts (the gate needs the finals' paired interval above +1 pt)")


def main(argv: list[str] | None = None) -> None:
    ap = command_parser("python -m kdutils.chapters.tgeo.campaign", __doc__.split("\n")[0], part_alias=True)
    ap.add_argument("--poll", type=float, default=30.0)
    ap.add_argument("--force", action="store_true", help="run the finals for every student, even where its KD-room "
                    "gate fails (give it to every shard, or the shards deal different lists)")
    ap.add_argument("--gate-only", action="store_true", help="stop after the room-gate stage and print the gates")
    ap.add_argument("--attempt", type=int, default=rc.LATEST, choices=sorted(rc.ATTEMPTS),
                    help=f"the recipe's attempt (default {rc.LATEST}, the newest): "
                         + "; ".join(f"{k} {v[0]}" for k, v in rc.ATTEMPTS.items()))
    a = ap.parse_args(argv)
    shard = shard_of(a, ap)
    if a.dry_run:
        print(dry_run(a.profile, 2 if shard.count == 1 else shard.count, force=a.force, attempt=a.attempt))
        return
    run_campaign(a.profile, shard.position, shard.count, poll_s=a.poll, force=a.force,
                 last_stage=GATE if a.gate_only else FINALS, attempt=a.attempt)


if __name__ == "__main__":
    main()
