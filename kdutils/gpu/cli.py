"""`python -m kdutils gpu`: the whole book on one GPU in one command, inside a time budget.

    python -m kdutils gpu --out DIR [--budget-s 480] [--dry-run] [--chapters hinton ls_kd ...]
    python -m kdutils gpu unpack DIR/kdutils-gpu-results.tar.gz* [--results results]

Stages, each logged with its time: (1) correctness checks (`checks`), (2) benchmarks side by side in one
process (`benchmarks`), (3) every chapter at the `gpu` profile: the first epoch of each architecture is timed
(`probe`), the chapters run cheapest first, each with the seeds that fit the budget left
(`workload.allocate`: seeds are trimmed, never the recipe), under a deadline, and what the earlier ones really
took corrects the estimates of the later ones (`correction`); (4) after every stage the new and changed files under
`results/` are packed into DIR (`pack`), with the run's report and log beside them, so a run cut short
still brings back what it finished. `--dry-run` times the probes and prints the plan, trains nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

#: Seconds kept back at the end for packing and the final report.
RESERVE_S = 15.0
#: What the correctness checks are expected to take (a dry run sets it aside).
CHECKS_S = 60.0


class DeadlineExceeded(BaseException):
    """Raised inside a stage when its time is up. A BaseException, so that no `except Exception` (an engine's
    fall-back, a retry) swallows it; records are written atomically, so a cut leaves whole records only."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM; main thread only; None: no limit)."""
    if seconds is None or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise DeadlineExceeded(f"time is up after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Log:
    """Lines to stdout (flushed: the device tool returns the output's tail) and to a log file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(text + "\n")


# ------------------------------------------------------------------------------------------------- the run
def parse_args(argv: list[str]) -> argparse.Namespace:
    from kdutils.report.chapter import names
    from kdutils.store.profiles import PROFILES

    p = argparse.ArgumentParser(prog="kdutils gpu", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu-out",
                   help="folder for the packed results, report and log (default: $OUT, else gpu-out)")
    p.add_argument("--device", default=None, choices=["cuda", "cpu"], help="default: cuda when available")
    p.add_argument("--profile", default="gpu", choices=PROFILES, help="the chapters' profile (default gpu)")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for everything (default 480)")
    chapters = names()
    p.add_argument("--chapters", nargs="+", default=None, choices=chapters, metavar="CHAPTER",
                   help=f"chapters to run, in this order (default: all of {', '.join(chapters)}, the cheapest "
                        "first by the probe's estimate, so that a short budget keeps the most chapters)")
    p.add_argument("--dry-run", action="store_true", help="time the probes, print the plan and estimates only")
    p.add_argument("--skip-checks", action="store_true")
    p.add_argument("--no-pytest", action="store_true", help="run the plain checks only, not the pytest node ids")
    p.add_argument("--skip-bench", action="store_true")
    p.add_argument("--bench-steps", type=int, default=None, help="timed steps per variant (default 200 CUDA, 4 CPU)")
    p.add_argument("--bench-batch-size", type=int, default=None, help="default 128 (16 on CPU)")
    p.add_argument("--bench-k", type=int, nargs="+", default=None, help="students together (default 4 16; CPU 2)")
    p.add_argument("--bench-budget-s", type=float, default=90.0, help="the benchmarks' deadline (default 90)")
    p.add_argument("--probe-steps", type=int, default=None, help="steps timed per architecture (default 20; CPU 3)")
    args = p.parse_args(argv)
    if args.budget_s <= 0:
        p.error(f"--budget-s must be positive, got {args.budget_s:g}")
    for name in ("bench_steps", "bench_batch_size", "probe_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.bench_k is not None and min(args.bench_k) < 2:
        p.error(f"--bench-k needs at least 2 students, got {args.bench_k}")
    return args


def _environment(device: str) -> None:
    """Defaults for a plain checkout on the device machine: data in ./data (carried), quiet chapters."""
    from kdutils.paths import REPO_ROOT

    if "KDUTILS_DATA" not in os.environ and (REPO_ROOT / "data").is_dir():
        os.environ["KDUTILS_DATA"] = str(REPO_ROOT / "data")
    os.environ["KDUTILS_DEVICE"] = device
    os.environ.setdefault("KDUTILS_PROGRESS", "0")


def correction(ratios: list[float], low: float = 0.5, high: float = 4.0) -> float:
    """What to multiply the probe's estimates by, learnt from the chapters that ran: the geometric mean of
    their actual / estimated times, kept within [low, high] (1 before any chapter has run)."""
    if not ratios:
        return 1.0
    return min(high, max(low, math.exp(sum(math.log(max(r, 1e-9)) for r in ratios) / len(ratios))))


def scaled(timings: dict, factor: float) -> dict:
    from kdutils.gpu.workload import Timing

    return {k: Timing(t.epoch_s * factor, t.run_s * factor) for k, t in timings.items()}


class Run:
    """One run of the command: its clock and budget, log, report, and the results folder it packs."""

    def __init__(self, args: argparse.Namespace, clock: Callable[[], float]) -> None:
        import torch

        from kdutils.bench import run as bench
        from kdutils.paths import results_dir
        from kdutils.store.provenance import provenance
        from kdutils.gpu import pack as packing

        self.args, self.clock, self.started = args, clock, clock()
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("kdutils gpu: --device cuda, but no CUDA device is available")
        _environment(self.device.type)
        self.out = Path(args.out)
        self.log = Log(self.out / "gpu.log")
        self.root = results_dir()
        self.before = packing.snapshot(self.root)
        run_id = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{bench.device_kind(self.device)}"
        self.report: dict[str, Any] = {"run_id": run_id, "device": bench.device_label(self.device),
                                       "profile": args.profile, "budget_s": args.budget_s, "dry_run": args.dry_run,
                                       "stages": {}, "chapters": [], "provenance": provenance(self.device)}

    def left(self) -> float:
        return self.args.budget_s - (self.clock() - self.started)

    def save(self) -> None:
        """The report into --out and, unless a dry run, into results/gpu/, then everything new packed."""
        from kdutils.store.io import atomic_write_json
        from kdutils.gpu import pack as packing

        self.report["elapsed_s"] = round(self.clock() - self.started, 1)
        if not self.args.dry_run:
            atomic_write_json(self.root / "gpu" / f"{self.report['run_id']}.json", self.report)
            files = packing.changed_since(self.root, self.before)
            self.report["packed"] = [p.name for p in packing.pack(self.root, files, self.out)]
            self.report["records_packed"] = len(files)
        (self.out / "gpu-report.json").write_text(json.dumps(self.report, indent=1, sort_keys=True, default=str))

    def checks(self) -> None:
        from kdutils.gpu import checks

        t = self.clock()
        try:
            results = checks.run_checks(self.device,
                                        pytest_nodes=not self.args.no_pytest and self.device.type == "cuda")
        except Exception as err:  # a check that cannot even run is a failed check; the run goes on
            results = [checks.Check("the checks themselves", False, f"{type(err).__name__}: {err}",
                                    values={"traceback": traceback.format_exc()[-4000:]})]
        for c in results:
            self.log(c.line())
        self.report["stages"]["checks"] = {"seconds": round(self.clock() - t, 1),
                                           "passed": all(c.passed for c in results), "checks": checks.as_dicts(results)}
        self.save()

    def bench(self) -> float | None:
        """The benchmarks under their deadline; returns the group share they measured (CUDA), else None."""
        from kdutils.gpu.benchmarks import run_benchmarks

        args, t, cpu = self.args, self.clock(), self.device.type == "cpu"
        status = "ok"
        results: list[dict[str, Any]] = []  # filled by run_benchmarks as each (task, K) finishes
        try:
            with deadline(min(args.bench_budget_s, max(1.0, self.left() - RESERVE_S))):
                run_benchmarks(self.device, ks=tuple(args.bench_k or ((2,) if cpu else (4, 16))),
                               steps=args.bench_steps or (4 if cpu else 200), warmup=1 if cpu else 20,
                               batch_size=args.bench_batch_size or (16 if cpu else 128), workers=0 if cpu else 2,
                               data="random" if args.profile == "smoke" else "auto", rounds=1,
                               compile_task=None if cpu else "mlp",
                               time_left=lambda: args.bench_budget_s - (self.clock() - t), log=self.log, out=results)
        except DeadlineExceeded as err:
            status = f"cut: {err}"
        except Exception as err:  # the chapters still get their turn
            status = f"failed: {type(err).__name__}: {err}"
            self.log(f"benchmarks failed: {traceback.format_exc()[-2000:]}")
        self.report["stages"]["bench"] = {"seconds": round(self.clock() - t, 1), "status": status,
                                          "ratios": {_bench_name(r): r["ratios"] for r in results}}
        self.save()
        plain = [r for r in results if r["task"] == "mlp" and not _compiled(r)]
        if not plain or cpu:
            return None
        first = min(plain, key=lambda r: r["k"])  # K=4: conservative for the chapters' groups of up to 8
        return min(1.0, 1.0 / max(first["ratios"]["together_vs_sequential"], 1e-9))

    def plan(self, share: float) -> list[tuple[str, Any, Any, dict]]:
        """Each chapter's work and the probe's timings of it; a chapter that cannot be planned is skipped."""
        from kdutils.gpu.probe import probe
        from kdutils.gpu.workload import estimate

        from kdutils.report.chapter import load, names

        t, plans = self.clock(), []
        steps = self.args.probe_steps or (3 if self.device.type == "cpu" else 20)
        for name in self.args.chapters or names():
            try:
                chapter = load(name)
                if chapter.gpu_work is None:
                    raise ValueError("the chapter declares no gpu_work")
                work = chapter.gpu_work(self.args.profile)
                timings = {}
                for w in work.works:
                    timings[w.label] = probe(w, self.device, max_steps=steps)
                    self.log(f"   probe {w.label}: {timings[w.label].epoch_s:.2f} s per epoch, "
                             f"{timings[w.label].run_s:.2f} s per evaluation")
            except Exception as err:  # a package this machine lacks, a model that does not build: the others go on
                self.log(f"{name}: cannot be planned here ({type(err).__name__}: {err}); skipped")
                self.report["chapters"].append({"chapter": name, "status": f"skipped: {type(err).__name__}: {err}",
                                                "traceback": traceback.format_exc()[-4000:]})
                continue
            plans.append((name, chapter, work, timings))
        self.report["stages"]["probe"] = {"seconds": round(self.clock() - t, 1)}
        if self.args.chapters is None:  # cheapest first (at their fewest seeds)
            plans.sort(key=lambda p: estimate(p[2], p[3], p[2].min_seeds, share))
        return plans

    def chapters(self, share: float, ahead: float) -> None:
        """Every planned chapter with the seeds that fit the budget left, under its deadline (a dry run plans
        only; `ahead` is what it sets aside for the stages a real run would have run before)."""
        from kdutils.progress import tqdm
        from kdutils.store.profiles import pinned_profile, seed_cap
        from kdutils.gpu.workload import allocate, estimate

        plans = self.plan(share)
        self.log(f"probes: {self.report['stages']['probe']['seconds']:.1f} s; students trained together charged "
                 f"at {share:.2f} of a separate run")
        self.report["stages"]["probe"]["group_share"] = share
        dry = self.args.dry_run
        bar = tqdm(range(len(plans)), desc="chapters", disable=dry)
        ratios: list[float] = []  # actual / estimated time of the chapters that ran to the end
        for i, (name, chapter, work, raw) in enumerate(plans):
            factor = correction(ratios)
            timings = scaled(raw, factor)
            later = [(w, scaled(tm, factor)) for _, _, w, tm in plans[i + 1:]]
            budget = self.left() - RESERVE_S - ahead
            alloc = allocate(work, timings, budget, later, group_share=share)
            entry: dict[str, Any] = {"chapter": name, **asdict(alloc), "trimmed": alloc.trimmed,
                                     "correction": round(factor, 3), "timings": {k: asdict(v) for k, v in raw.items()},
                                     "estimates_s": {n: round(estimate(work, timings, n, share), 1)
                                                     for n in range(work.min_seeds, work.seeds + 1)}}
            self.log(("plan  " if dry else "run   ") + alloc.describe())
            bar.update(1)
            if dry or alloc.skipped:
                entry["status"] = "skipped: budget" if alloc.skipped else "planned"
                ahead += 0.0 if alloc.skipped else alloc.estimate_s  # a dry run spends its plan
                self.report["chapters"].append(entry)
                continue
            later_min = sum(estimate(w, tm, w.min_seeds, share) for w, tm in later)
            entry["deadline_s"] = round(min(budget, max(1.5 * alloc.estimate_s, budget - later_min)), 1)
            t = self.clock()
            try:
                with deadline(entry["deadline_s"]), seed_cap(alloc.seeds), pinned_profile(self.args.profile):
                    chapter.run_all(profile=self.args.profile, progress=False)
                entry["status"] = "ok"
                ratios.append((self.clock() - t) / max(alloc.estimate_s / factor, 1e-9))
            except DeadlineExceeded as err:
                entry["status"] = f"cut: {err} (its records so far are kept)"
            except Exception as err:  # one chapter's failure must not cost the others their turn
                entry["status"] = f"failed: {type(err).__name__}: {err}"
                entry["traceback"] = traceback.format_exc()[-4000:]
            entry["seconds"] = round(self.clock() - t, 1)
            self.log(f"      {name}: {entry['status']} after {entry['seconds']:.0f} s "
                     f"(estimated {alloc.estimate_s:.0f} s)")
            self.report["chapters"].append(entry)
            self.save()
        bar.close()


def run(args: argparse.Namespace, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The whole run; returns its report (also written as results/gpu/<run id>.json and into --out)."""
    from kdutils.gpu.workload import DEFAULT_GROUP_SHARE

    r = Run(args, clock)
    r.log(f"kdutils gpu: {r.report['device']}, profile {args.profile}, budget {args.budget_s:.0f} s"
          + (" (dry run: nothing is trained)" if args.dry_run else ""))
    if r.report["provenance"]["commit"] == "unknown":
        r.log("WARNING: no git here and KDUTILS_GIT_COMMIT unset: every record will name commit 'unknown'")
    ahead, measured_share = 0.0, None
    if args.dry_run:  # a dry run plans for a real run: it sets aside what the checks and benchmarks would take
        ahead = (0.0 if args.skip_checks else CHECKS_S) + (0.0 if args.skip_bench else args.bench_budget_s)
        r.log(f"plan  checks ~{0.0 if args.skip_checks else CHECKS_S:.0f} s, benchmarks up to "
              f"{0.0 if args.skip_bench else args.bench_budget_s:.0f} s")
    else:
        if not args.skip_checks:
            r.checks()
        if not args.skip_bench:
            measured_share = r.bench()
    r.chapters(measured_share or DEFAULT_GROUP_SHARE.get(r.device.type, 1.0), ahead)
    r.save()
    r.log(summary(r.report))
    return r.report


def _compiled(res: dict[str, Any]) -> bool:
    return any("torch.compile" in row["name"] for row in res["rows"])


def _bench_name(res: dict[str, Any]) -> str:
    return f"{res['task']} k={res['k']}" + (" + torch.compile" if _compiled(res) else "")


def summary(report: dict[str, Any]) -> str:
    """The last lines of the log: what ran, how long, what was trimmed (the device tool returns the tail)."""
    lines = [f"== kdutils gpu {report['run_id']}: {report['elapsed_s']:.0f} s of {report['budget_s']:.0f} s"]
    for name, stage in report["stages"].items():
        extra = "" if "passed" not in stage else (" all passed" if stage["passed"] else " SOME FAILED")
        lines.append(f"   {name:<10} {stage['seconds']:>7.1f} s{extra}")
    for c in report["chapters"]:
        seeds = f"{c['seeds']}/{c['planned_seeds']} seeds" if "seeds" in c else ""
        lines.append(f"   {c['chapter']:<13} {seeds:<12} est {c.get('estimate_s', 0):>6.0f} s  "
                     f"took {c.get('seconds', 0):>6.0f} s  {c['status']}")
    if report.get("packed"):
        lines.append(f"   packed {report['records_packed']} files into {', '.join(report['packed'])}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ unpack
def unpack_main(argv: list[str]) -> int:
    from kdutils.paths import results_dir
    from kdutils.gpu.pack import unpack

    p = argparse.ArgumentParser(prog="kdutils gpu unpack",
                                description="unpack a GPU run's packed results into the results folder")
    p.add_argument("files", nargs="+", help="kdutils-gpu-results.tar.gz, or all of its .partNN files")
    p.add_argument("--results", default=None, help="results folder (default: $KDUTILS_RESULTS, else results/)")
    args = p.parse_args(argv)
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        print(f"kdutils gpu unpack: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    root = Path(args.results) if args.results else results_dir()
    try:
        done = unpack([Path(f) for f in args.files], root)
    except ValueError as err:
        print(f"kdutils gpu unpack: {err}", file=sys.stderr)
        return 1
    print(f"unpacked into {root}: {len(done['written'])} new file(s), {len(done['identical'])} already there "
          f"and identical, {len(done['replaced'])} benchmark figure(s) replaced by the newer measurement")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["unpack"]:
        return unpack_main(argv[1:])
    report = run(parse_args(argv))
    failed = [c for c in report["chapters"] if str(c.get("status", "")).startswith("failed")]
    return 1 if failed else 0


__all__ = ["DeadlineExceeded", "Run", "correction", "deadline", "main", "run", "scaled", "summary",
           "unpack_main"]
