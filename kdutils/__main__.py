"""Command line: `python -m kdutils sweep|run|bench ...` (also installed as `kdutils`)."""
from __future__ import annotations

import argparse
import json
import sys

from kdutils.store.profiles import PROFILES


def _sweep(args: argparse.Namespace) -> int:
    from kdutils.sweeps.sweep import parse_value, run_sweep

    grid = {name: [parse_value(v) for v in values] for name, *values in args.param or []}
    empty = [name for name, values in grid.items() if not values]
    if empty:
        raise SystemExit(f"parameter(s) {', '.join(empty)} given without values: use -p NAME V1 V2 ...")
    if args.executor != "ray" and (args.address is not None or args.max_retries is not None):
        raise SystemExit("--address and --max-retries apply to --executor ray only")
    try:
        if args.executor == "ray":  # Ray is imported only here: kdutils works without it
            from kdutils.sweeps.ray_executor import DEFAULT_MAX_RETRIES, run_sweep_ray

            retries = DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries
            report = run_sweep_ray(args.notebook, grid, profile=args.profile, out_dir=args.out,
                                   group=not args.no_group, address=args.address, max_retries=retries)
        else:
            report = run_sweep(args.notebook, grid, profile=args.profile, out_dir=args.out, group=not args.no_group)
    except (ValueError, FileNotFoundError) as err:  # a bad grid, profile or notebook: one clear line, exit 2
        print(f"kdutils sweep: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.failed else 0


def _run(args: argparse.Namespace) -> int:
    """Run one chapter's configs without Jupyter (the GPU machine has no papermill)."""
    from kdutils.report.chapter import load

    try:
        chapter = load(args.chapter)
    except ValueError as err:
        raise SystemExit(f"kdutils run: {err}") from None
    params = _set_params(chapter.run_all, args.set or [])
    records = chapter.run_all(profile=args.profile, **params)
    for rec in records:
        print(json.dumps({"role": rec["config"]["role"], "key": rec["key"], "status": rec["status"], **rec["metrics"]}))
    return 0


#: `--set` names whose values must be numbers, checked here so the error names the flag (not a bare
#: "could not convert string to float").
_INTEGER_SETTINGS = ("seed", "fold")
_NUMBER_SETTINGS = ("tau", "alpha", "lr")


def _set_params(run_all, pairs: list[list[str]]) -> dict:
    """`--set NAME VALUE` pairs -> keyword arguments of `run_all`, each name and number checked."""
    import inspect

    from kdutils.config import check_int, check_number
    from kdutils.sweeps.sweep import parse_value

    allowed = [n for n in inspect.signature(run_all).parameters if n not in ("profile", "store", "progress")]
    params = {}
    for name, text in pairs:
        if name not in allowed:
            raise SystemExit(f"--set {name}: unknown setting; this chapter takes: {', '.join(allowed)}")
        value = parse_value(text)
        try:
            if name in _INTEGER_SETTINGS and value is not None:
                check_int(value, name)
            elif name in _NUMBER_SETTINGS and value is not None:
                check_number(value, name)
        except ValueError as err:
            raise SystemExit(f"--set {name} {text}: {err}") from None
        params[name] = value
    return params


def _bench(args: argparse.Namespace) -> int:
    from kdutils.bench.run import main as bench_main

    return bench_main(args.rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdutils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="execute a notebook once per grid point with papermill (resumable)")
    sw.add_argument("notebook")
    sw.add_argument("-p", "--param", nargs="+", action="append", metavar=("NAME", "VALUE"),
                    help="a grid axis: -p tau 1 4 8 16 (repeat for more axes)")
    sw.add_argument("--profile", default="smoke", choices=PROFILES)
    sw.add_argument("--out", default="runs", help="folder for executed notebooks and completion markers")
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
    rn.add_argument("--profile", default="cpu", choices=PROFILES)
    rn.add_argument("--set", nargs=2, action="append", metavar=("NAME", "VALUE"))
    rn.set_defaults(func=_run)
    bn = sub.add_parser("bench", help="throughput benchmarks (prints figures)")
    bn.add_argument("rest", nargs=argparse.REMAINDER)
    bn.set_defaults(func=_bench)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # argparse's REMAINDER does not take a leading "--option": hand over directly
        return _bench(argparse.Namespace(rest=argv[1:]))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
