"""Grid sweeps over a parameterized notebook, executed headlessly with papermill.

Each grid point gets an output notebook `<out>/<stem>/<point>.ipynb` and, once papermill finishes it
without error, a completion marker `<out>/<stem>/.done/<point>.json` written atomically. A restarted sweep
skips points with a marker, so killing it loses at most the point in flight (which reruns, and inside it
every finished run is loaded from the results store rather than retrained). Failed points are recorded,
do not stop the sweep, and are listed at the end.

Students trained together: when the notebook's metadata names its chapter
(`"kdutils": {"experiment": "hinton"}`), the sweep first asks that chapter's `point_configs(profile, **params)`
for the runs of every point not yet done and trains them with `group_runner.run_grouped` (students that
differ only in tau/alpha/seed share one process and one data pipeline); the notebooks then only load records.
A failure there is reported and the notebooks train whatever is still missing on their own; a point whose
configs cannot be built is left out of the grouped pre-run (and then fails in its notebook), the others
still train together.

Before anything runs, every grid name is checked against the names the notebook's `parameters` cell assigns
(a misspelled `taw` would otherwise run the default tau), and numbers against the type of their default
(`seed = 0` takes integers only).

Before anything trains the sweep says how many points it has, how many are left and, from the times its
earlier points took (kept in their markers), about how long the rest will take; a grid of more than
`MAX_UNCONFIRMED_POINTS` points runs only when confirmed (`yes=True`, `--yes`): a typo such as
`-p tau $(seq 100)` must not start a day of training. The results and cache folders are checked writable
first, and the sweep's profile is pinned in $KDUTILS_PROFILE for its notebooks (an explicit profile wins over
a variable set for something else). Two sweeps or `kdutils run`s of the same runs never train one twice: each
run is trained under its lock (`kdutils.store.locks`).

Done markers follow the results store: a marker records the results root ($KDUTILS_RESULTS) it was written
for and counts only for that root, and, when the notebook names its chapter, only while every run
of its point has a finished record there. So a sweep into another or an emptied store runs everything again
(a notebook without a chapter records nothing the sweep can check, so only the root is compared).
"""
from __future__ import annotations

import ast
import itertools
import json
import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kdutils.progress import tqdm

from kdutils.config import config_hash
from kdutils.store.io import atomic_write_json
from kdutils.store.profiles import check_profile, pinned_profile
from kdutils.store.store import ResultStore

Executor = Callable[[Path, Path, dict[str, Any], Path], None]

#: A grid with more points than this runs only when confirmed (`yes=True`; `--yes` on the command line).
MAX_UNCONFIRMED_POINTS = 200


def check_grid_size(grid: dict[str, list[Any]], yes: bool) -> int:
    """The number of points of `grid`; ValueError if it is above MAX_UNCONFIRMED_POINTS and not confirmed."""
    n = math.prod(len(values) for values in grid.values())
    if n > MAX_UNCONFIRMED_POINTS and not yes:
        axes = " x ".join(f"{name}: {len(values)} values" for name, values in grid.items())
        raise ValueError(f"the grid has {n} points ({axes}), more than {MAX_UNCONFIRMED_POINTS}: check it, then "
                         "add --yes (yes=True) to run it")
    return n


def read_notebook(notebook: str | Path) -> dict[str, Any]:
    """A notebook's JSON, or ValueError naming the file when it is a folder or not a notebook."""
    path = Path(notebook)
    if path.is_dir():
        raise ValueError(f"notebook {str(path)!r} is a folder, not a .ipynb file")
    try:
        content = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"notebook {str(path)!r} is not a notebook (not JSON: {err})") from None
    if not isinstance(content, dict):
        raise ValueError(f"notebook {str(path)!r} is not a notebook (a JSON {type(content).__name__})")
    return content


def expand_grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product, in the order the parameters were given."""
    names = list(params)
    return [dict(zip(names, values)) for values in itertools.product(*(params[n] for n in names))]


def parse_value(text: str) -> Any:
    """Command-line values: int, then float, then true/false/none, else the string itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names the notebook's `parameters` cell assigns -> their literal defaults (None when not a literal)."""
    cells = read_notebook(notebook).get("cells", [])
    cell = next((c for c in cells if "parameters" in (c.get("metadata", {}).get("tags") or [])), None)
    if cell is None:
        raise ValueError(f"{notebook}: no cell tagged 'parameters', so a sweep cannot set any value there")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):  # `x: int = 1`, or `x: int` with no value
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(value) if value is not None else None
                except ValueError:
                    out[target.id] = None
    return out


def check_grid(notebook: str | Path, grid: dict[str, list[Any]]) -> None:
    """Every grid name must be a parameter of the notebook, and numbers must fit its default's type."""
    allowed = notebook_parameters(notebook)
    unknown = [name for name in grid if name not in allowed]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for {Path(notebook).name}; its "
                         f"parameters cell defines: {', '.join(sorted(allowed))}")
    for name, values in grid.items():
        default = allowed[name]
        for value in values:
            if isinstance(default, bool) or default is None or isinstance(default, str) or value is None:
                continue  # none = "the notebook's automatic choice" where a parameter allows it
            if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"parameter {name!r} takes integers (its default is {default!r}), got {value!r}")
            if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"parameter {name!r} takes numbers (its default is {default!r}), got {value!r}")


def point_name(params: dict[str, Any]) -> str:
    """A readable, filesystem-safe name plus a hash so distinct points never collide."""
    readable = "_".join(f"{k}{v}" for k, v in params.items()).replace("/", "-").replace(" ", "")[:80]
    return f"{readable}-{config_hash(params)[:8]}"


def papermill_executor(notebook: Path, output: Path, params: dict[str, Any], cwd: Path) -> None:
    import papermill as pm

    pm.execute_notebook(str(notebook), str(output), parameters=params, cwd=str(cwd), kernel_name="python3",
                        progress_bar=False, log_output=False)


@dataclass
class SweepReport:
    done: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    grouped: int = 0  # runs recorded by the grouped pre-run
    group_error: str = ""  # why the grouped pre-run stopped, if it did

    def summary(self) -> str:
        lines = [f"{len(self.done)} ran, {len(self.skipped)} already done, {len(self.failed)} failed"]
        if self.grouped:
            lines.append(f"  {self.grouped} run(s) trained together before the notebooks")
        if self.group_error:
            lines.append(f"  grouped pre-run failed (the notebooks trained on their own): {self.group_error}")
        for params, error in self.failed:
            lines.append(f"  FAILED {params}: {error}")
        return "\n".join(lines)


def sweep_folders(notebook: Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Where a sweep of `notebook` writes its executed notebooks, and its completion markers."""
    folder = Path(out_dir) / notebook.stem
    return folder, folder / ".done"


def mark_done(report: SweepReport, marker: Path, params: dict[str, Any], notebook: Path, output: Path,
              wall_s: float | None = None) -> None:
    """A point's last step under every executor: the marker goes down only once its outputs are written.
    wall_s: how long the point took, for later sweeps' time estimates."""
    atomic_write_json(marker, {"params": params, "notebook": str(notebook), "output": str(output),
                               "results": _results_root(), "wall_s": wall_s})
    (marker.parent.parent / f"{point_name(params)}.error.txt").unlink(missing_ok=True)  # an old failure's trace
    report.done.append(params)


def _results_root() -> str:
    from kdutils.paths import results_dir

    return str(results_dir().resolve())


def point_done(marker: Path, params: dict[str, Any], experiment: str | None = None,
               fixed: dict[str, Any] | None = None) -> bool:
    """A marker counts only for the results root it was written for and, when the notebook names its
    experiment module, only while every run of the point has a finished record in that store."""
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if info.get("results") != _results_root():
        return False
    if not experiment:
        return True
    from kdutils.report.chapter import load as load_chapter

    try:
        cfgs = load_chapter(experiment).points(**{**(fixed or {}), **params})
    except Exception:  # noqa: BLE001 - a point that cannot be built is not done; its notebook will say why
        return False
    store = ResultStore()
    return all(store.get(c) is not None for c in cfgs)


def pending_points(points: list[dict[str, Any]], markers: Path, experiment: str | None = None,
                   fixed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The points without a valid done marker (see `point_done`), in order."""
    return [p for p in points if not point_done(markers / f"{point_name(p)}.json", p, experiment, fixed)]


def mark_failed(report: SweepReport, folder: Path, params: dict[str, Any], err: BaseException, detail: str) -> None:
    """List a failed point (one line) and keep its full traceback next to the outputs."""
    message = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    report.failed.append((params, message))
    (folder / f"{point_name(params)}.error.txt").write_text(detail)


def notebook_experiment(notebook: Path) -> tuple[str | None, dict[str, Any]]:
    """The chapter (`kdutils.chapters.<name>`) a notebook declares in its metadata (`"kdutils": {"experiment": ..., "params":
    {...}}`), if any, and the parameters it pins."""
    meta = read_notebook(notebook).get("metadata", {}).get("kdutils") or {}
    return meta.get("experiment"), dict(meta.get("params") or {})


def pre_run_grouped(experiment: str, points: list[dict[str, Any]], progress: bool = True,
                    fixed: dict[str, Any] | None = None, errors: list[str] | None = None) -> int:
    """Train the runs of `points` together where the grid allows; returns how many runs it recorded.

    `fixed` holds parameters a notebook pins in its metadata (e.g. which teacher/student pair it shows).
    errors: when given, a point whose configs cannot be built is listed there and left out, so one bad point
    does not keep the valid ones from training together (without it, the error propagates)."""
    from kdutils.report.chapter import load as load_chapter
    from kdutils.training.group_runner import run_grouped

    fixed = fixed or {}
    chapter = load_chapter(experiment)
    cfgs: list[Any] = []
    for params in points:
        try:
            cfgs += chapter.points(**{**fixed, **params})
        except Exception as err:
            if errors is None:
                raise
            errors.append(f"{params}: {type(err).__name__}: {err}")
    store = ResultStore()
    missing = {c.key() for c in cfgs if store.get(c) is None}
    run_grouped(cfgs, store, progress=progress)
    return len(missing)


@dataclass
class SweepPlan:
    """What a sweep will do, the same for every executor: the grid's points and which of them are pending."""

    notebook: Path
    folder: Path
    markers: Path
    points: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    experiment: str | None
    fixed: dict[str, Any]

    def describe(self) -> str:
        """One line said before anything runs: points, how many are left, and a time estimate from the wall
        times earlier points of this notebook took (kept in their markers), when there are any."""
        n, todo = len(self.points), len(self.pending)
        head = f"sweep {self.notebook.stem}: {n} point{'s' if n != 1 else ''}, {todo} to run, {n - todo} already done"
        if not todo:
            return head
        times = []
        for marker in self.markers.glob("*.json"):
            try:
                wall = json.loads(marker.read_text()).get("wall_s")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(wall, (int, float)) and wall >= 0:
                times.append(float(wall))
        if not times:
            return f"{head}; time per point not known yet (no timed point of this notebook in {self.markers.parent})"
        per = statistics.median(times)
        return (f"{head}; about {_duration(per)} per point (median of {len(times)} earlier point(s)), so about "
                f"{_duration(per * todo)} in all")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plan_sweep(notebook: str | Path, grid: dict[str, list[Any]], profile: str, out_dir: str | Path,
               yes: bool = False) -> SweepPlan:
    """Check the grid's size, the notebook, profile and grid names and the folders it will write before
    anything runs, and find the points still to do."""
    check_grid_size(grid, yes)
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {str(notebook)!r} does not exist")
    check_profile(profile)
    check_grid(notebook, {**grid, "profile": [profile]})
    ResultStore().check_writable()
    folder, markers = sweep_folders(notebook, out_dir)
    markers.mkdir(parents=True, exist_ok=True)
    points = [{**p, "profile": profile} for p in expand_grid(grid)]
    experiment, fixed = notebook_experiment(notebook)
    return SweepPlan(notebook, folder, markers, points, pending_points(points, markers, experiment, fixed),
                     experiment, fixed)


def run_sweep(notebook: str | Path, grid: dict[str, list[Any]], *, profile: str = "smoke",
              out_dir: str | Path = "runs", executor: Executor | None = None,
              progress: bool = True, group: bool = True, yes: bool = False,
              announce: Callable[[str], None] | None = None) -> SweepReport:
    """Execute `notebook` once per grid point (plus `profile`), skipping points already completed.

    group: first train the pending points' runs together (when the notebook names its chapter); yes: run a
    grid of more than MAX_UNCONFIRMED_POINTS points; announce: called with `SweepPlan.describe()` before
    anything runs (the command line prints it); executor: default `papermill_executor`."""
    with pinned_profile(check_profile(profile)):
        plan = plan_sweep(notebook, grid, profile, out_dir, yes)
        if announce is not None:
            announce(plan.describe())
        return _run_plan(plan, executor or papermill_executor, progress, group)


def _run_plan(plan: SweepPlan, executor: Executor, progress: bool, group: bool) -> SweepReport:
    """`run_sweep` once the plan is made: the grouped pre-run, then each pending point's notebook."""
    notebook, folder, markers, points, pending = plan.notebook, plan.folder, plan.markers, plan.points, plan.pending
    experiment, fixed = plan.experiment, plan.fixed
    report = SweepReport()
    started = time.perf_counter()
    if experiment and pending and group:
        bad_points: list[str] = []
        try:
            report.grouped = pre_run_grouped(experiment, pending, progress, fixed, errors=bad_points)
        except Exception as err:  # the notebooks still run, and train (or fail) on their own
            report.group_error = f"{type(err).__name__}: {err}"
            (folder / "grouped.error.txt").write_text(traceback.format_exc())
        if bad_points:
            report.group_error = "; ".join(filter(None, [report.group_error, "left out (invalid): " + "; ".join(bad_points)]))
    shared_s = (time.perf_counter() - started) / max(len(pending), 1)  # the grouped pre-run, per point
    bar = tqdm(points, desc=f"sweep {notebook.stem}", disable=not progress)
    for params in bar:
        name = point_name(params)
        marker = markers / f"{name}.json"
        if params not in pending:
            report.skipped.append(params)
            continue
        bar.set_postfix_str(name[:40])
        output = folder / f"{name}.ipynb"
        started = time.perf_counter()
        try:
            executor(notebook, output, params, notebook.parent)
        except Exception as err:  # keep going: one failed point must not lose the rest of the grid
            mark_failed(report, folder, params, err, traceback.format_exc())
            continue
        mark_done(report, marker, params, notebook, output, wall_s=round(shared_s + time.perf_counter() - started, 3))
    return report


def completed_points(notebook: str | Path, out_dir: str | Path = "runs") -> list[dict[str, Any]]:
    folder = Path(out_dir) / Path(notebook).stem / ".done"
    return [json.loads(p.read_text())["params"] for p in sorted(folder.glob("*.json"))]
