"""Grid sweeps over a parameterized notebook, executed headlessly with papermill.

Each grid point gets an output notebook `<out>/<stem>/<point>.ipynb` and, once papermill finishes it
without error, a completion marker `<out>/<stem>/.done/<point>.json` written atomically. A restarted sweep
skips points with a marker, so killing it loses at most the point in flight (which reruns, and inside it
every finished run is loaded from the results store rather than retrained). Failed points are recorded,
do not stop the sweep, and are listed at the end.

Students trained together: when the notebook's metadata names an experiment module
(`"kdutils": {"experiment": "hinton"}`), the sweep first asks that module's `point_configs(profile, **params)`
for the runs of every point not yet done and trains them with `group_runner.run_grouped` (students that
differ only in tau/alpha/seed share one process and one data pipeline); the notebooks then only load records.
A failure there is reported and the notebooks train whatever is still missing on their own.
"""
from __future__ import annotations

import itertools
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .progress import tqdm

from .config import config_hash
from .profiles import check_profile
from .store import atomic_write_json

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
    atomic_write_json(marker, {"params": params, "notebook": str(notebook), "output": str(output)})
    report.done.append(params)


def mark_failed(report: SweepReport, folder: Path, params: dict[str, Any], err: BaseException, detail: str) -> None:
    """List a failed point (one line) and keep its full traceback next to the outputs."""
    message = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    report.failed.append((params, message))
    (folder / f"{point_name(params)}.error.txt").write_text(detail)


def notebook_experiment(notebook: Path) -> tuple[str | None, dict[str, Any]]:
    """The experiment module a notebook declares in its metadata (`"kdutils": {"experiment": ..., "params":
    {...}}`), if any, and the parameters it pins."""
    meta = json.loads(Path(notebook).read_text()).get("metadata", {}).get("kdutils") or {}
    return meta.get("experiment"), dict(meta.get("params") or {})


def pre_run_grouped(experiment: str, points: list[dict[str, Any]], progress: bool = True,
                    fixed: dict[str, Any] | None = None) -> int:
    """Train the runs of `points` together where the grid allows; returns how many runs it recorded.

    `fixed` holds parameters a notebook pins in its metadata (e.g. which teacher/student pair it shows)."""
    import importlib

    from .group_runner import run_grouped
    from .store import ResultStore

    fixed = fixed or {}
    module = importlib.import_module(f"kdutils.experiments.{experiment}")
    cfgs = [cfg for params in points for cfg in module.point_configs(**{**fixed, **params})]
    store = ResultStore()
    missing = {c.key() for c in cfgs if store.get(c) is None}
    run_grouped(cfgs, store, progress=progress)
    return len(missing)


def run_sweep(notebook: str | Path, grid: dict[str, list[Any]], *, profile: str = "smoke",
              out_dir: str | Path = "runs", executor: Executor = papermill_executor,
              progress: bool = True, group: bool = True) -> SweepReport:
    """Execute `notebook` once per grid point (plus `profile`), skipping points already completed.

    group: first train the pending points' runs together (when the notebook names its experiment module)."""
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise FileNotFoundError(f"notebook {str(notebook)!r} does not exist")
    check_profile(profile)
    folder, markers = sweep_folders(notebook, out_dir)
    markers.mkdir(parents=True, exist_ok=True)
    report = SweepReport()
    points = [{**p, "profile": profile} for p in expand_grid(grid)]
    experiment, fixed = notebook_experiment(notebook) if group else (None, {})
    pending = [p for p in points if not (markers / f"{point_name(p)}.json").exists()]
    if experiment and pending:
        try:
            report.grouped = pre_run_grouped(experiment, pending, progress, fixed)
        except Exception as err:  # the notebooks still run, and train (or fail) on their own
            report.group_error = f"{type(err).__name__}: {err}"
            (folder / "grouped.error.txt").write_text(traceback.format_exc())
    bar = tqdm(points, desc=f"sweep {notebook.stem}", disable=not progress)
    for params in bar:
        name = point_name(params)
        marker = markers / f"{name}.json"
        if marker.exists():
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
