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

Done markers follow the results store: a marker records the results root ($KDUTILS_RESULTS) it was written
for and counts only for that root, and, when the notebook names its chapter, only while every run
of its point has a finished record there. So a sweep into another or an emptied store runs everything again
(a notebook without a chapter records nothing the sweep can check, so only the root is compared).
"""
from __future__ import annotations

import ast
import itertools
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kdutils.progress import tqdm

from kdutils.config import config_hash
from kdutils.store.io import atomic_write_json
from kdutils.store.profiles import check_profile

Executor = Callable[[Path, Path, dict[str, Any], Path], None]


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
    cells = json.loads(Path(notebook).read_text()).get("cells", [])
    cell = next((c for c in cells if "parameters" in (c.get("metadata", {}).get("tags") or [])), None)
    if cell is None:
        raise ValueError(f"{notebook}: no cell tagged 'parameters', so a sweep cannot set any value there")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(node.value) if node.value is not None else None
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


def mark_done(report: SweepReport, marker: Path, params: dict[str, Any], notebook: Path, output: Path) -> None:
    """A point's last step under every executor: the marker goes down only once its outputs are written."""
    atomic_write_json(marker, {"params": params, "notebook": str(notebook), "output": str(output),
                               "results": _results_root()})
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
    from kdutils.store.store import ResultStore

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
    meta = json.loads(Path(notebook).read_text()).get("metadata", {}).get("kdutils") or {}
    return meta.get("experiment"), dict(meta.get("params") or {})


def pre_run_grouped(experiment: str, points: list[dict[str, Any]], progress: bool = True,
                    fixed: dict[str, Any] | None = None, errors: list[str] | None = None) -> int:
    """Train the runs of `points` together where the grid allows; returns how many runs it recorded.

    `fixed` holds parameters a notebook pins in its metadata (e.g. which teacher/student pair it shows).
    errors: when given, a point whose configs cannot be built is listed there and left out, so one bad point
    does not keep the valid ones from training together (without it, the error propagates)."""
    from kdutils.report.chapter import load as load_chapter
    from kdutils.training.group_runner import run_grouped
    from kdutils.store.store import ResultStore

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


def plan_sweep(notebook: str | Path, grid: dict[str, list[Any]], profile: str, out_dir: str | Path) -> SweepPlan:
    """Check the notebook, profile and grid names before anything runs, and find the points still to do."""
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {str(notebook)!r} does not exist")
    check_profile(profile)
    check_grid(notebook, {**grid, "profile": [profile]})
    folder, markers = sweep_folders(notebook, out_dir)
    markers.mkdir(parents=True, exist_ok=True)
    points = [{**p, "profile": profile} for p in expand_grid(grid)]
    experiment, fixed = notebook_experiment(notebook)
    return SweepPlan(notebook, folder, markers, points, pending_points(points, markers, experiment, fixed),
                     experiment, fixed)


def run_sweep(notebook: str | Path, grid: dict[str, list[Any]], *, profile: str = "smoke",
              out_dir: str | Path = "runs", executor: Executor = papermill_executor,
              progress: bool = True, group: bool = True) -> SweepReport:
    """Execute `notebook` once per grid point (plus `profile`), skipping points already completed.

    group: first train the pending points' runs together (when the notebook names its chapter)."""
    plan = plan_sweep(notebook, grid, profile, out_dir)
    notebook, folder, markers, points, pending = plan.notebook, plan.folder, plan.markers, plan.points, plan.pending
    experiment, fixed = plan.experiment, plan.fixed
    report = SweepReport()
    if experiment and pending and group:
        bad_points: list[str] = []
        try:
            report.grouped = pre_run_grouped(experiment, pending, progress, fixed, errors=bad_points)
        except Exception as err:  # the notebooks still run, and train (or fail) on their own
            report.group_error = f"{type(err).__name__}: {err}"
            (folder / "grouped.error.txt").write_text(traceback.format_exc())
        if bad_points:
            report.group_error = "; ".join(filter(None, [report.group_error, "left out (invalid): " + "; ".join(bad_points)]))
    bar = tqdm(points, desc=f"sweep {notebook.stem}", disable=not progress)
    for params in bar:
        name = point_name(params)
        marker = markers / f"{name}.json"
        if params not in pending:
            report.skipped.append(params)
            continue
        bar.set_postfix_str(name[:40])
        output = folder / f"{name}.ipynb"
        try:
            executor(notebook, output, params, notebook.parent)
        except Exception as err:  # keep going: one failed point must not lose the rest of the grid
            mark_failed(report, folder, params, err, traceback.format_exc())
            continue
        mark_done(report, marker, params, notebook, output)
    return report


def completed_points(notebook: str | Path, out_dir: str | Path = "runs") -> list[dict[str, Any]]:
    folder = Path(out_dir) / Path(notebook).stem / ".done"
    return [json.loads(p.read_text())["params"] for p in sorted(folder.glob("*.json"))]
