"""Command line: `python -m kdutils sweep|run|bench|gpu ...` (also installed as `kdutils`).

Errors are one line on stderr naming the bad value and what is allowed. Exit status: 0 done, 1 a point or run
failed (or a folder, disk or cluster problem), 2 a usage error (bad argument or environment variable: nothing
ran), 130 interrupted with Ctrl-C (finished runs and points are kept: rerun the same command to resume).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from kdutils.store.profiles import PROFILES


class UsageError(SystemExit):
    """A bad argument or environment value: `main` prints the message as one line and exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _grid(params: list[list[str]]) -> dict[str, list[Any]]:
    """`-p NAME V1 V2 ...` axes -> the grid; a name given again adds its values (in order, each once)."""
    from kdutils.sweeps.sweep import parse_value

    grid: dict[str, list[Any]] = {}
    for name, *values in params:
        if not values:
            raise UsageError(f"parameter {name} given without values: use -p NAME V1 V2 ...")
        if name == "profile":
            raise UsageError(f"-p profile {' '.join(values)}: the profile is set with --profile (one per sweep), "
                             "not as a grid axis")
        axis = grid.setdefault(name, [])
        axis += [v for v in map(parse_value, values) if v not in axis]
    return grid


def _profile(explicit: str | None, default: str, command: str) -> str:
    """The profile to use: --profile if given (it wins over $KDUTILS_PROFILE), else the variable, else
    `default`. A bad variable is a usage error naming it."""
    from kdutils.store.profiles import env_profile

    try:
        env = env_profile()
    except ValueError as err:
        raise UsageError(str(err)) from None
    if explicit is None:
        return env or default
    if env and env != explicit:
        print(f"kdutils {command}: --profile {explicit} wins over KDUTILS_PROFILE={env} for this command",
              file=sys.stderr)
    return explicit


def _check_device() -> None:
    """$KDUTILS_DEVICE, checked before anything runs."""
    from kdutils.training.runner import default_device

    try:
        default_device()
    except ValueError as err:
        raise UsageError(str(err)) from None


def _say(line: str) -> None:
    print(line, flush=True)


def _sweep(args: argparse.Namespace) -> int:
    from kdutils.sweeps import sweep

    grid = _grid(args.param or [])
    if args.executor != "ray" and (args.address is not None or args.max_retries is not None):
        raise UsageError("--address and --max-retries apply to --executor ray only")
    profile = _profile(args.profile, "smoke", "sweep")
    _check_device()
    try:
        sweep.check_grid_size(grid, args.yes)  # before the notebook is even read
        if args.executor == "ray":  # Ray is imported only here: kdutils works without it
            from kdutils.sweeps.ray_executor import DEFAULT_MAX_RETRIES, check_address, run_sweep_ray

            check_address(args.address)
            retries = DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries
            report = run_sweep_ray(args.notebook, grid, profile=profile, out_dir=args.out, group=not args.no_group,
                                   address=args.address, max_retries=retries, yes=args.yes, announce=_say)
        else:
            report = sweep.run_sweep(args.notebook, grid, profile=profile, out_dir=args.out,
                                     group=not args.no_group, yes=args.yes, announce=_say)
    except (ValueError, FileNotFoundError) as err:  # a bad grid, profile or notebook: nothing ran
        raise UsageError(str(err)) from None
    print(report.summary())
    return 1 if report.failed else 0


def _chapter(name: str):
    """The `CHAPTER` of chapter `name` (`kdutils.report.chapter`), or a usage error listing the chapters."""
    from kdutils.report.chapter import load

    try:
        return load(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _run(args: argparse.Namespace) -> int:
    """Run one chapter's configs without Jupyter (the GPU machine has no papermill)."""
    from kdutils.store.profiles import pinned_profile
    from kdutils.store.store import ResultStore

    chapter = _chapter(args.chapter)
    params = _set_params(chapter.run_all, args.set or [])
    params.update(_shard_param(chapter.run_all, args.chapter, getattr(args, "shard", None), params))
    profile = _profile(args.profile, "cpu", "run")
    _check_device()
    ResultStore().check_writable()  # before anything trains
    with pinned_profile(profile):  # what the chapter's own resolve_profile reads
        records = chapter.run_all(profile=profile, **params)
    for rec in records:
        print(json.dumps({"role": rec["config"]["role"], "key": rec["key"], "status": rec["status"], **rec["metrics"]}))
    return 0


def _shard_param(run_all, name: str, shard: Any, params: dict) -> dict:
    """``--shard K/N`` -> run_all's `shard` setting (for the chapters whose run is split between processes);
    the old ``--set shard K/N`` (also counted from 1) still works, with a line giving the new spelling."""
    import inspect

    from kdutils.sweeps.shards import parse_shard, say_old_spelling

    if "shard" in params:
        if shard is not None:
            raise UsageError(f"--shard {shard} and --set shard {params['shard']} both given; give --shard only")
        try:
            old = parse_shard(params["shard"])
        except ValueError as err:
            raise UsageError(f"--set shard {params['shard']}: {err}") from None
        say_old_spelling(f"--set shard {params['shard']}", old)
        return {"shard": old}
    if shard is None:
        return {}
    if "shard" not in inspect.signature(run_all).parameters:
        raise UsageError(f"--shard {shard}: the {name} chapter's run is not split into shards; leave --shard out")
    return {"shard": shard}


#: `--set` names whose values must be numbers, checked here so the error names the flag (not a bare
#: "could not convert string to float"). A plural (taus, alphas, seeds) takes a list: `--set taus 1,2,4`.
_INTEGER_SETTINGS = ("seed", "fold")
_NUMBER_SETTINGS = ("tau", "alpha", "lr")
_LIST_SETTINGS = ("taus", "alphas", "seeds")


def _check_setting(name: str, value: Any) -> Any:
    """One value of setting `name` (singular), checked; ValueError naming what is allowed."""
    from kdutils.config import check_int, check_number, check_seed
    from kdutils.losses import check_alpha, check_tau

    if value is None:
        return value
    if name == "seed":
        check_seed(value, name)
    elif name in _INTEGER_SETTINGS:
        check_int(value, name, 0)
    elif name in _NUMBER_SETTINGS:
        check_number(value, name)
        {"tau": check_tau, "alpha": check_alpha}.get(name, lambda v: v)(value)
    return value


def _set_params(run_all, pairs: list[list[str]]) -> dict:
    """`--set NAME VALUE` pairs -> keyword arguments of `run_all`, each name and number checked; a setting
    given twice, or both as one value and as a list (tau and taus), is refused."""
    import inspect

    from kdutils.sweeps.sweep import parse_value

    signature = inspect.signature(run_all).parameters
    allowed = [n for n in signature if n not in ("profile", "store", "progress")]
    given: dict[str, str] = {}
    for name, text in pairs:
        if name not in allowed:
            raise UsageError(f"--set {name}: unknown setting; this chapter takes: {', '.join(allowed)}")
        if name in given:
            raise UsageError(f"--set {name} given twice ({given[name]!r}, then {text!r}); give it once"
                             + (f", or several values with --set {name}s V1,V2" if f"{name}s" in allowed else ""))
        given[name] = text
    for name in given:
        if f"{name}s" in given:
            raise UsageError(f"--set {name} {given[name]} and --set {name}s {given[name + 's']} both given: the single "
                             f"value would silently win; give one of them")
    params = {}
    for name, text in given.items():
        default = signature[name].default
        try:
            if name in _LIST_SETTINGS or isinstance(default, (tuple, list)):
                items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
                if not items:
                    raise ValueError(f"empty list; give values separated by commas, e.g. --set {name} 1,2,4")
                singular = name[:-1] if name.endswith("s") else name
                params[name] = tuple(_check_setting(singular, parse_value(t)) for t in items)
            else:
                params[name] = _check_setting(name, parse_value(text))
        except ValueError as err:
            raise UsageError(f"--set {name} {text}: {err}") from None
    return params


def _parse_shard(text: str):
    from kdutils.sweeps.shards import parse_shard

    return parse_shard(text)


def _bench(args: argparse.Namespace) -> int:
    from kdutils.bench.run import main as bench_main

    return bench_main(args.rest)


def _gpu(args: argparse.Namespace) -> int:
    from .gpu.cli import main as gpu_main

    return gpu_main(args.rest)


def main(argv: list[str] | None = None) -> int:
    from kdutils.store.io import StorageError

    parser = argparse.ArgumentParser(prog="kdutils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="execute a notebook once per grid point with papermill (resumable)")
    sw.add_argument("notebook")
    sw.add_argument("-p", "--param", nargs="+", action="append", metavar=("NAME", "VALUE"),
                    help="a grid axis: -p tau 1 4 8 16 (repeat for more axes; a repeated NAME adds values)")
    sw.add_argument("--profile", default=None, choices=PROFILES,
                    help="the run scale (default: $KDUTILS_PROFILE, else smoke); wins over $KDUTILS_PROFILE")
    sw.add_argument("--out", default="runs", help="folder for executed notebooks and completion markers")
    sw.add_argument("--yes", action="store_true",
                    help="run a grid of more than 200 points (without it, such a grid is refused)")
    sw.add_argument("--no-group", action="store_true",
                    help="do not train the points' students together before running the notebooks")
    sw.add_argument("--executor", default="local", choices=("local", "ray"),
                    help="local: one point after another here; ray: each point a task on a Ray cluster")
    sw.add_argument("--address", default=None,
                    help="ray only: 'auto' (the cluster this machine joined), ray://HOST:10001, or none to "
                         "start Ray on this machine")
    sw.add_argument("--max-retries", type=int, default=None,
                    help="ray only: re-executions of a point whose worker or node died (default 2)")
    sw.set_defaults(func=_sweep)
    from kdutils.report.chapter import names

    rn = sub.add_parser("run", help="run a chapter's configs directly (no Jupyter needed)")
    rn.add_argument("chapter", help=f"one of: {', '.join(names())} (the folders of kdutils/chapters)")
    rn.add_argument("--profile", default=None, choices=PROFILES,
                    help="the run scale (default: $KDUTILS_PROFILE, else cpu); wins over $KDUTILS_PROFILE")
    rn.add_argument("--set", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="a run_all setting: --set tau 4, or a list: --set taus 1,2,4")
    rn.add_argument("--shard", type=_parse_shard, default=None, metavar="K/N",
                    help="train shard K of N, counted from 1 (1/2 and 2/2 in two processes), where the chapter's "
                         "run is split between processes")
    rn.set_defaults(func=_run)
    bn = sub.add_parser("bench", help="throughput benchmarks (prints figures)")
    bn.add_argument("rest", nargs=argparse.REMAINDER)
    bn.set_defaults(func=_bench)
    gp = sub.add_parser("gpu", help="the whole book on one GPU inside a time budget; `gpu unpack` its results")
    gp.add_argument("rest", nargs=argparse.REMAINDER)
    gp.set_defaults(func=_gpu)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # argparse's REMAINDER does not take a leading "--option": hand over directly
        return _bench(argparse.Namespace(rest=argv[1:]))
    if argv[:1] == ["gpu"]:
        return _gpu(argparse.Namespace(rest=argv[1:]))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"kdutils {args.command}: {err}", file=sys.stderr)
        raise
    except KeyboardInterrupt:
        print(f"kdutils {args.command}: interrupted; finished runs and points are kept: rerun the same command "
              "to resume", file=sys.stderr)
        return 130
    except (StorageError, ConnectionError) as err:
        print(f"kdutils {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
