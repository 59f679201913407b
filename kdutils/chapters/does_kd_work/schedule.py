"""Stanton et al.: the chapter's run as phases, split between processes, with a cost estimate from the records.

Why: the chapter's `cpu` records take hours of one thread, and a small CPU runs best as one single-thread process
per core. The runs depend on each other in steps, so they run as phases:

1. the teachers' learning-rate candidates (every data set);
2. the chosen teachers' ensemble members, half-data teachers and plain models, and the students' rate
   candidates (each needs member 0 only, which is the chosen candidate of phase 1);
3. every claim's students and the baseline evaluations;
4. and 5. where the teacher recipe trains much longer or shorter than the students, plain models at the
   students' budget: their rate candidates, then the other seeds (`matched`, a control added after v2).

Each phase's runs are split between ``n`` shards by a deterministic longest-first assignment on their estimated
cost (every process computes the same split from the same records). A process trains its own share, then waits
until the other shares' records of the phase exist (the records are written after the checkpoints, so a
waiting student finds its teachers). Both processes therefore start with the same command but ``--shard 1/2``
and ``--shard 2/2`` (`kdutils.sweeps.shards`; the old ``--set shard 1/2`` still works); a killed process resumes
from its records when started again.

The cost of a run is its images x epochs times a per-image-epoch time measured from the recorded runs of the
same model and policy (`measured_rates`: wall_time_s / (epochs x images)), so the estimate inherits those
runs' machine and load. `dry_run` prints the phases, shards (two unless told) and estimate and trains nothing.
The medians, the longest-first deal and the per-shard line are the core's (`kdutils.sweeps.cost`).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from kdutils.chapters.does_kd_work import matched
from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.config import RunConfig
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.sweeps.cost import RateSamples, balance, per_shard, run_seconds, seconds_per_image_epoch
from kdutils.sweeps.shards import Shard, parse_shard

#: Extra test images every run of v2 evaluates beyond v1's 2,000 (two forward passes, about a third of a
#: training step each): added to each estimate as images x epochs of 2 x 8,000 / 3.
EVAL_IMAGE_EPOCHS = 2 * 8000 / 3
POLL_S = 15.0
TOTAL_IMAGES = {"fashion_mnist": 60000, "mnist": 60000, "cifar100": 50000}

Job = dkw.Job


# ------------------------------------------------------------------------------------------------- costs
def _rate_key(job: Job) -> tuple[str, ...]:
    if isinstance(job, RunConfig):
        return ("teacher", job.model)
    return ("student", job.student_model, job.policy, str(job.ensemble_size))


def job_images(job: Job) -> tuple[int, int]:
    """(images per epoch, epochs) of a job as planned (an evaluation: one pass over its sets, no epochs)."""
    if isinstance(job, RunConfig):
        n = job.data.n_train or (TOTAL_IMAGES[job.data.dataset] - job.data.val_size)
        return int(n), int(job.train.epochs)
    t = job.teachers[0].data
    n = t.n_train or (TOTAL_IMAGES[t.dataset] - t.val_size)
    images = int(n * job.distill_fraction) + job.n_ood + job.n_unlabelled
    return images, (0 if job.evaluate else int(job.epochs))


def measured_rates(store: ResultStore, profile: str = "cpu") -> dict[tuple[str, ...], float]:
    """Seconds per image-epoch by (teacher, model) and (student, model, policy, teachers), the median over the
    recorded runs of `profile` (wall_time_s / (epochs x images))."""
    samples: RateSamples[tuple[str, ...]] = RateSamples()
    for rec in store.records(dkw.EXPERIMENT):
        cfg, wall = rec.get("config", {}), rec.get("wall_time_s")
        if cfg.get("profile") != profile or not wall or rec.get("status") != "ok":
            continue
        key: tuple[str, ...]  # a teacher's kind has two parts, a student's four
        if cfg.get("role") in ("teacher", matched.ROLE):  # the same recipe, trained alone
            key, n, epochs = ("teacher", cfg["model"]), rec.get("n_train"), cfg["train"]["epochs"]
        elif cfg.get("evaluate"):
            continue
        else:
            key = ("student", cfg["student_model"], cfg["policy"], str(len(cfg["teachers"])))
            n, epochs = rec.get("n_distill"), cfg["epochs"]
        samples.add(key, seconds_per_image_epoch(wall, epochs, n))
    return {k: r.seconds for k, r in samples.medians().items()}


def job_cost(job: Job, rates: dict[tuple[str, ...], float]) -> float | None:
    """Estimated seconds of one job on one thread (None where no recorded run measures its kind). A student
    kind without its own measurement borrows the crop/flip rate of its teacher count, scaled by the teachers'
    forward passes where only one teacher was measured."""
    key = _rate_key(job)
    images, epochs = job_images(job)
    rate = rates.get(key)
    if rate is None and key[0] == "student":
        k = int(key[3])
        rate = rates.get(("student", key[1], dkw.BASE_POLICY, key[3]))
        one = rates.get(("student", key[1], dkw.BASE_POLICY, "1"))
        if rate is None and one is not None:
            rate = one * (1 + (k - 1) / 3)  # a teacher forward costs about a third of a student step
    if rate is None:
        return None
    if isinstance(job, dkw.DistillSpec) and job.evaluate:
        return rate * (images + 10000) / 3  # forward passes only (distillation set and test set)
    return run_seconds(rate, images * epochs + EVAL_IMAGE_EPOCHS)


def assign(jobs: Sequence[Job], count: int, cost: Callable[[Job], float | None]) -> list[list[Job]]:
    """Longest first onto the least-loaded shard (`kdutils.sweeps.cost.balance`); ties by key, so every process
    computes the same split. A job of unknown cost counts as the median known cost."""
    return balance(jobs, count, cost, lambda j: j.key())


# ------------------------------------------------------------------------------------------------- phases
PHASES = (1, 2, 3, *matched.STEPS)


def phase_jobs(phase: int, profile: str, datasets: Sequence[str], claims: Sequence[int], version: str,
               store: ResultStore, planned: bool = False) -> list[Job]:
    """Phases 1-3 of the recipe (`plan.phase_jobs`), then 4-5: the plain models at the students' budget
    (`matched.jobs`: their rate candidates, then the other members), a control added after v2's records."""
    if phase in matched.STEPS:
        return list(matched.jobs(phase, profile, datasets, claims, version, store, planned))
    return dkw.phase_jobs(phase, profile, datasets, claims, version, store, planned)


def _run_job(job: Job, store: ResultStore, progress: bool) -> dict[str, Any]:
    from kdutils.chapters.does_kd_work.run import run_spec
    from kdutils.training.runner import run

    return run(job, store, progress=progress) if isinstance(job, RunConfig) else run_spec(job, store, progress=progress)


def _wait(jobs: Sequence[Job], store: ResultStore, phase: int, poll_s: float) -> None:
    """Block until every job of the phase has a record (the other shards' share)."""
    last = 0.0
    while True:
        missing = [j for j in jobs if store.get(j) is None]
        if not missing:
            return
        now = time.monotonic()
        if now - last > 300:
            print(f"phase {phase}: waiting for {len(missing)} run(s) of the other shard(s), e.g. {missing[0].key()}",
                  flush=True)
            last = now
        time.sleep(poll_s)


def run(profile: str, datasets: Sequence[str], claims: Sequence[int], version: str, store: ResultStore, *,
        shard: str | Shard = "1/1", dry_run: bool = False, progress: bool = True, poll_s: float = POLL_S
        ) -> list[dict[str, Any]]:
    """Run (or, with `dry_run`, print) the phases (`PHASES`) for this shard; returns the records it trained or
    found of its own share."""
    sh = parse_shard(shard)
    rates = measured_rates(store, profile)
    cost = lambda j: job_cost(j, rates)  # noqa: E731
    if dry_run:
        print(plan_text(profile, datasets, claims, version, store, max(2, sh.count), rates))
        return []
    records: list[dict[str, Any]] = []
    for phase in PHASES:
        before: set[str] | None = None
        while True:  # a phase grows while a rate grid is extended past an edge (`plan.grid_of`)
            jobs = phase_jobs(phase, profile, datasets, claims, version, store)
            todo = {j.key() for j in jobs if store.get(j) is None}
            if not todo:
                break
            if todo == before:
                raise RuntimeError(f"phase {phase}: {len(todo)} run(s) still not recorded after training them, "
                                   f"e.g. {sorted(todo)[0]}")
            before = todo
            for job in assign(jobs, sh.count, cost)[sh.position]:
                if job.key() in todo:
                    records.append(_run_job(job, store, progress))
            if sh.count > 1:
                _wait(jobs, store, phase, poll_s)
    return records


def plan_text(profile: str, datasets: Sequence[str], claims: Sequence[int], version: str, store: ResultStore,
              count: int = 2, rates: dict[tuple[str, ...], float] | None = None) -> str:
    """The dry run: each phase's runs by kind, each shard's estimated hours, and the two commands."""
    rates = measured_rates(store, profile) if rates is None else rates
    lines = [f"does_kd_work, profile {profile}, recipe {version}, data {', '.join(datasets)}; costs from "
             f"{len(rates)} measured kinds of recorded {profile} runs (wall_time_s / (epochs x images))"]
    totals = [0.0] * count
    wall, unknown = 0.0, 0
    for phase in PHASES:
        jobs = phase_jobs(phase, profile, datasets, claims, version, store, planned=True)
        kinds: dict[str, list[float | None]] = defaultdict(list)
        for j in jobs:
            kinds[_describe(j)].append(job_cost(j, rates))
        recorded = sum(store.get(j) is not None for j in jobs)
        lines.append(f"phase {phase}: {len(jobs)} runs, {recorded} recorded")
        for kind, cs in sorted(kinds.items()):
            known = [c for c in cs if c is not None]
            lines.append(f"  {len(cs):3d} x {kind}: {sum(known) / 60:.0f} min" +
                         (f" ({len(cs) - len(known)} without a measured rate)" if len(known) < len(cs) else ""))
        pending = [j for j in jobs if store.get(j) is None]
        unknown += sum(job_cost(j, rates) is None for j in pending)
        loads = [sum(c for c in (job_cost(j, rates) for j in share) if c is not None)
                 for share in assign(pending, count, lambda j: job_cost(j, rates))]
        totals = [t + x for t, x in zip(totals, loads)]
        wall += max(loads)
    lines.append("estimate of what is not yet recorded: " + per_shard(totals)
        + f"; {sum(totals) / 3600:.2f} core-hours"
        + (f" (+{unknown} pending runs without a rate)" if unknown else ""))
    lines.append(f"wall time about {wall / 3600:.2f} h (the phases wait for each other: the larger shard of each "
                 "phase, summed)")
    lines.append("commands (one thread each, from the repository root):")
    pinned = "" if version == dkw.latest(profile) else f" --set version {version}"
    for sh in Shard.every(count):
        lines.append(f"  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m kdutils run does_kd_work "
                     f"--profile {profile}{pinned} --shard {sh}")
    return "\n".join(lines)


def _describe(job: Job) -> str:
    if isinstance(job, RunConfig):
        half = "" if job.data.fold is None else ", half data"
        kind = "plain model (students' budget)" if job.role == matched.ROLE else "teacher"
        return f"{job.data.dataset} {kind} {job.model}, {job.train.epochs} epochs{half}"
    images, epochs = job_images(job)
    if job.evaluate == "plain":
        return f"{job.dataset} baseline: plain model vs teacher"
    if job.evaluate == "init":
        return f"{job.dataset} baseline: agreement at init, r={job.r:g}"
    extra = f", r={job.r:g}" if job.r is not None else ""
    extra += f", +{job.n_unlabelled} unlabelled" if job.n_unlabelled else ""
    return (f"{job.dataset} student {job.policy}, {job.ensemble_size} teacher(s), {images} images x {epochs} "
            f"epochs{extra}")


def run_all(profile: str = "cpu", dataset: str = "fashion_mnist", claim: int | None = None, mnist: bool = True,
            store: ResultStore | None = None, progress: bool = True, shard: str | Shard = "1/1", dry_run: bool = False,
            version: str | None = None) -> list[dict[str, Any]]:
    """Train the newest recipe's runs (or `version`'s): teacher selection, teachers, the students' rate
    selection, every claim's students and the baselines, then the MNIST/LeNet-5 runs (claims 1 and 7 there).
    Resumable: finished records are skipped. ``shard="i/n"`` (from 1) trains the i-th of n disjoint shares and waits for
    the others' records where it needs them (two processes, one thread each); ``dry_run`` prints the plan and
    its cost estimate and trains nothing. See the module docstring."""
    check_profile(profile)
    version = dkw.latest(profile) if version is None else version
    datasets = (dataset,) + (("mnist",) if mnist and dataset != "mnist" and claim in (None, 1, 7) else ())
    claims = dkw.RUN_ORDER if claim is None else (int(claim),)
    return run(profile, datasets, claims, version, store or ResultStore(), shard=shard,
                        dry_run=dry_run, progress=progress)


__all__ = ["PHASES", "assign", "job_cost", "job_images", "measured_rates", "phase_jobs", "plan_text", "run", "run_all"]
