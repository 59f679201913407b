"""Chandrasegaran et al., recipe v3: the plan (every run, from the recorded selections), its split into shards that
two single-thread processes train without sharing a run, and the resumable run of one shard.

The order of one shard (each step skips what is recorded, so a killed process is restarted with the same command):

1. the teachers' rate selections (each shard trains those of its share of the LS values, then waits for the rest);
2. the common student rate: the validation selection of the first plain teacher's tau = 1 student (the first
   shard, which trains that teacher first; the other shards wait for its records when they need it);
3. the shard's teachers (teacher pair ``i`` = the teachers of every LS value with seed ``i``);
4. each teacher's analysis (target entropies; for LS teacher ``i`` the matched temperatures against plain
   teacher ``i``);
5. the students of the shard's teacher pairs (tau sweep and matched-entropy arms, every student seed) and its
   share of the student alone's seeds (dealt round-robin); all at the common rate;
6. the analysis of every final run (test- and training-split centroids and class spreads; projections of seed 0).

Teacher pairs go to shards round-robin (the k-th pair, from 0, to shard position ``k mod n``, i.e. ``--shard
(k mod n)+1/n``): the matched temperatures of a pair need both of its teachers, so a pair never straddles two
processes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kdutils.chapters.ls_kd import recipe_v3 as rv3
from kdutils.chapters.ls_kd.recipes import load_analysis, round_tau, student_arm, teacher_arm
from kdutils.config import RunConfig
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import Selection, load_selection


@dataclass(frozen=True)
class Unit:
    """One final run and where it sits in the design: kind "teacher" | "student" | "alone"; ``ls`` the teacher's
    label smoothing; ``pair`` the teacher seed; ``matched`` the LS teacher's tau this plain arm is matched to."""

    cfg: RunConfig
    kind: str
    ls: float | None = None
    pair: int | None = None
    tau: float | None = None
    seed: int = 0
    matched: float | None = None

    @property
    def teacher_of(self) -> tuple[float, int]:
        """(LS value, teacher pair) of a teacher or a distilled student; the student alone has none."""
        if self.ls is None or self.pair is None:
            raise ValueError(f"a {self.kind!r} unit has no teacher")
        return self.ls, self.pair

    @property
    def arm(self) -> str:
        if self.kind == "alone":
            return f"{self.cfg.model}-alone"
        ls, _ = self.teacher_of
        if self.kind == "teacher":
            return teacher_arm(ls)
        if self.tau is None:
            raise ValueError("a distilled student unit needs its tau")
        return student_arm(self.cfg.model, ls, self.tau)


@dataclass
class PlanV3:
    """What recipe v3 runs at ``profile``, as far as the records determine it (``missing`` says what not yet)."""

    profile: str
    teacher_lrs: dict[float, float]
    common_lr: float | None
    units: list[Unit] = field(default_factory=list)
    matched: dict[int, dict[float, float]] = field(default_factory=dict)  # pair -> {LS tau: plain tau*}
    selection_runs: dict[str, list[RunConfig]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def teachers(self) -> dict[tuple[float, int], RunConfig]:
        return {u.teacher_of: u.cfg for u in self.units if u.kind == "teacher"}

    def finals(self, kind: str | None = None) -> list[Unit]:
        return [u for u in self.units if kind is None or u.kind == kind]


def shard_of(pair: int | None, n_shards: int, seeds: tuple[int, ...]) -> int:
    """The k-th teacher pair of ``seeds`` -> shard position ``k mod n`` (0-based: `Shard.position`), so the first
    pair (whose plain teacher the common rate's selection needs) is in the first shard; no pair -> the first."""
    return 0 if pair is None else list(seeds).index(pair) % int(n_shards)


def unit_shard(u: Unit, n_shards: int, r: "rv3.RecipeV3") -> int:
    """A unit's shard: its teacher pair's (``shard_of``); the alone arm's seeds are dealt round-robin."""
    if u.kind == "alone":
        return list(r.alone_seeds).index(u.seed) % int(n_shards)
    return shard_of(u.pair, n_shards, r.teacher_seeds)


def check_shard(shard: int, n_shards: int) -> None:
    if not (isinstance(n_shards, int) and n_shards >= 1 and isinstance(shard, int) and 0 <= shard < n_shards):
        raise ValueError(f"shard must be an integer in 0..n_shards-1 with n_shards >= 1, got {shard!r}/{n_shards!r}")


def _teacher_rates(profile: str, store: ResultStore) -> dict[float, float]:
    """{LS value: its teachers' rate} for the LS values whose selection is recorded."""
    r = rv3.recipe_v3(profile)
    out = {}
    for ls in r.ls_values:
        sel = load_selection(teacher_arm(ls), rv3.teacher_selection(profile, ls), store)
        if sel is not None:
            out[ls] = sel.lr
    return out


def build(profile: str, store: ResultStore | None = None) -> PlanV3:
    """The plan from the records alone (nothing is trained): arms whose rate or matched temperature is not yet
    recorded are listed in ``missing`` and have no units."""
    store = store or ResultStore()
    r = rv3.recipe_v3(profile)
    t_lrs = _teacher_rates(profile, store)
    p = PlanV3(profile, t_lrs, None)
    for ls in r.ls_values:
        p.selection_runs[teacher_arm(ls)] = rv3.teacher_selection(profile, ls)
        if ls not in t_lrs:
            p.missing.append(f"teacher rate of LS {ls:g}")
            continue
        for i in r.teacher_seeds:
            p.units.append(Unit(rv3.teacher_config(profile, ls, t_lrs[ls], i), "teacher", ls, i))
    teachers = p.teachers()
    if (0.0, r.teacher_seeds[0]) in teachers:
        runs = rv3.rate_selection(profile, teachers[(0.0, r.teacher_seeds[0])])
        p.selection_runs[rv3.rate_arm(profile)] = runs
        sel = load_selection(rv3.rate_arm(profile), runs, store)
        p.common_lr = None if sel is None else sel.lr
    if p.common_lr is None:
        p.missing.append("common student rate")
        return p
    lr = p.common_lr
    for i in r.teacher_seeds:
        for ls in r.ls_values:
            if (ls, i) not in teachers:
                continue
            for tau in r.taus:
                p.units += [Unit(rv3.student_config(profile, teachers[(ls, i)], tau, lr, j), "student", ls, i, tau, j)
                            for j in r.student_seeds]
        match = matched_taus(teachers.get((0.0, i)), teachers.get((0.1, i)), store)
        if match is None:
            p.missing.append(f"matched temperatures of teacher pair {i}")
            continue
        p.matched[i] = match
        for tau_ls, tau_plain in sorted(match.items()):
            if tau_plain in r.taus:
                continue
            p.units += [Unit(rv3.student_config(profile, teachers[(0.0, i)], tau_plain, lr, j), "student", 0.0, i,
                             tau_plain, j, matched=tau_ls) for j in r.student_seeds]
    p.units += [Unit(rv3.alone_config(profile, lr, s), "alone", seed=s) for s in r.alone_seeds]
    return p


def matched_taus(plain: RunConfig | None, smoothed: RunConfig | None, store: ResultStore) -> dict[float, float] | None:
    """{LS teacher's tau: plain tau* of equal training-target entropy} for one teacher pair, from the LS
    teacher's analysis record (None while not recorded)."""
    if plain is None or smoothed is None:
        return None
    a = load_analysis(smoothed, store)
    if not a or "matched" not in a:
        return None
    return {float(k): round_tau(v) for k, v in a["matched"].items()}


# ---- running one shard -------------------------------------------------------------------------------------------

def _wait(what: str, ready: Callable[[], Any], poll_s: float, timeout_s: float) -> Any:
    """Poll until ``ready()`` returns something (another shard is recording it); a clear error after timeout."""
    from kdutils.progress import tqdm

    start = time.monotonic()
    with tqdm(desc=f"waiting for {what} (another shard)", unit="poll") as bar:
        while True:
            got = ready()
            if got:
                return got
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{what} not recorded after {timeout_s:.0f} s; start the first shard, --shard 1/N "
                                   "(it records it)")
            bar.update(1)
            time.sleep(poll_s)


def run_shard(profile: str, shard: int = 0, n_shards: int = 1, store: ResultStore | None = None,
              progress: bool = True, poll_s: float = 30.0, timeout_s: float = 3 * 3600.0) -> PlanV3:
    """Train and analyse every run of ``shard`` (see the module docstring for the order); resumable."""
    from kdutils.chapters.ls_kd.analysis import analyse_teacher
    from kdutils.chapters.ls_kd.analysis_v3 import analyse_units
    from kdutils.sweeps.tuning import run_selection
    from kdutils.training.group_runner import run_grouped

    check_shard(shard, n_shards)
    store = store or ResultStore()
    r = rv3.recipe_v3(profile)
    lead = shard == 0
    # each shard selects the rates of its share of the LS values, then waits for the others'
    run_selection({teacher_arm(ls): rv3.teacher_selection(profile, ls) for k, ls in enumerate(r.ls_values)
                   if k % n_shards == shard}, store, progress)
    t_lrs = _wait("the teachers' rate selections", lambda: (lambda d: d if len(d) == len(r.ls_values) else None)(
        _teacher_rates(profile, store)), poll_s, timeout_s)
    if lead:  # first, so that the other shards never wait long: it needs only the first plain teacher
        plain0 = rv3.teacher_config(profile, 0.0, t_lrs[0.0], r.teacher_seeds[0])
        run_selection({rv3.rate_arm(profile): rv3.rate_selection(profile, plain0)}, store, progress)
    mine = [i for i in r.teacher_seeds if shard_of(i, n_shards, r.teacher_seeds) == shard]
    teachers = {(ls, i): rv3.teacher_config(profile, ls, t_lrs[ls], i) for ls in r.ls_values for i in mine}
    run_grouped(list(teachers.values()), store, progress=progress)
    for i in mine:
        pair = {ls: teachers[(ls, i)] for ls in r.ls_values}
        for cfg in pair.values():
            analyse_teacher(cfg, store, pair)
    p = build(profile, store) if lead else _wait("the common student rate", lambda: (
        lambda q: q if q.common_lr is not None else None)(build(profile, store)), poll_s, timeout_s)
    units = [u for u in p.units if u.kind != "teacher" and unit_shard(u, n_shards, r) == shard]
    # tau = 1 and the alone arm first (the gate and the reference of every comparison), then the rest
    units.sort(key=lambda u: (u.kind != "alone", u.tau != 1.0, u.pair if u.pair is not None else -1))
    run_grouped([u.cfg for u in units], store, progress=progress)
    analyse_units(p, [u for u in p.units if unit_shard(u, n_shards, r) == shard], store)
    return p


__all__ = ["PlanV3", "Unit", "build", "check_shard", "matched_taus", "run_shard", "shard_of", "unit_shard"]
