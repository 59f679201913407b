"""Run a sweep's grid on a Ray cluster: `python -m kdutils sweep NB -p ... --executor ray [--address ...]`.

Why Ray: the `full` profiles need tens of GPU-days, and Ray already schedules tasks over many machines (Slurm,
Kubernetes, cloud VMs) with GPU accounting, so nothing here is a scheduler. Each pending grid point becomes one
Ray task asking for `point_resources(profile)`; it executes the notebook with papermill on a worker and returns
the executed notebook plus the run records (and checkpoints) it produced. The driver writes those into its own
results store (`ResultStore.put`, atomic) and only then puts down the point's done marker, exactly like the
local executor (`sweep.mark_done`). When the notebook names its chapter, the runs are first trained
as tasks too: each missing teacher once, then each group of students `group_runner.partition` would train
together, so the notebooks only load records (as in the local sweep). The chapter's `point_configs` itself is
called on the driver: whatever it trains to build the configs (e.g. an lr selection) is trained there.

No shared filesystem: a task gets a snapshot of the driver's records (one copy in Ray's object store, shared by
all tasks) and the teacher checkpoints it needs, works in a private results folder on the worker, and sends
back only what it made. Data root and cache on a worker are the worker's own ($KDUTILS_DATA, $KDUTILS_CACHE).

Failures: a point whose notebook raises, or whose worker dies, is listed and the rest go on. Nothing of a dead
worker's point reaches the driver, so a rerun executes it afresh while finished points are skipped. Retry
policy: Ray re-executes a task whose worker or node died up to `max_retries` times (default
`DEFAULT_MAX_RETRIES` = 2, for preempted or OOM-killed workers); an exception raised by the notebook is not
retried (it would fail again). Retries duplicate nothing: records are keyed by config hash and a rerun of a
point loads the runs that exist. (A worker process killed alone leaves its notebook kernel behind for at most a
second, until ipykernel sees its parent gone; what it writes lands in the dead task's private folder.)

Provenance: records are made on the worker by the same code as local runs (`runner.record_run`), so they name
the worker's device and library versions. The git commit is the worker checkout's; on a worker whose kdutils
is an installed copy (no .git) it is the driver's, but only if that copy's source is byte-identical to the
driver's (`code_fingerprint`), else it stays "unknown".
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from kdutils.config import RunConfig, run_config_from_dict
from kdutils.progress import tqdm
from kdutils.report.chapter import load as load_chapter
from kdutils.store import locks
from kdutils.store.io import atomic_write_bytes
from kdutils.store.profiles import check_profile, pinned_profile
from kdutils.store.provenance import checkout_commit, git_commit, source_sha256, source_state
from kdutils.store.store import ResultStore
from kdutils.sweeps.sweep import SweepPlan, SweepReport, mark_done, mark_failed, plan_sweep, point_name

DEFAULT_MAX_RETRIES = 2
#: Profiles whose points each need a GPU (the papers' recipes); the others run on one CPU.
GPU_PROFILES = frozenset({"gpu", "full"})


def import_ray():
    """Ray, imported only when the Ray executor is used (kdutils itself does not need it)."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray executor needs Ray: pip install -e '.[ray]' (or -r requirements-ray.txt)") from err
    return ray


def point_resources(profile: str) -> dict[str, float]:
    """What one point's task asks Ray for: a GPU at the paper-scale profile, else one CPU."""
    check_profile(profile)
    return {"num_cpus": 1, "num_gpus": 1} if profile in GPU_PROFILES else {"num_cpus": 1}


def code_fingerprint() -> str:
    """SHA-256 over kdutils' Python source (paths and bytes): equal on driver and worker iff the code is."""
    return source_sha256()


@dataclass(frozen=True)
class CodeStamp:
    """The driver's code identity, sent with every task so worker records can name the same commit."""

    commit: str
    dirty: bool
    fingerprint: str
    source_dirty: bool | None = None  # the driver's kdutils source differs from its commit (None: unknown)

    @classmethod
    def here(cls) -> "CodeStamp":
        info = git_commit()
        return cls(str(info["commit"]), bool(info["dirty"]), code_fingerprint(), source_state()["kdutils_dirty"])


@dataclass
class TaskResult:
    """What a task sends back: records it wrote, checkpoints as (config dict, bytes), the executed notebook."""

    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    notebook: str | None = None
    error: str = ""  # the notebook raised: one line, as the local sweep lists it
    detail: str = ""  # its traceback


class NotebookFailed(RuntimeError):
    """The point's notebook raised on the worker (re-raised on the driver with the worker's message)."""


# ---------------------------------------------------------------------------------------------- worker side


def snapshot(store: ResultStore) -> dict[str, str]:
    """The store's record files as {relative path: JSON text}: what a worker's private store starts from."""
    return {p.relative_to(store.root).as_posix(): p.read_text() for p in sorted(store.root.glob("*/*.json"))}


@contextmanager
def worker_store(records: dict[str, str], checkpoints: list[tuple[dict[str, Any], bytes]],
                 stamp: CodeStamp, profile: str | None = None) -> Iterator[ResultStore]:
    """A private results store on the worker, seeded with the driver's records, for the length of one task.

    Shipped checkpoints go into the worker's cache (kept: the next task on this node reuses them). Environment
    variables are set for the task (the notebook kernel inherits them) and restored after, since Ray reuses
    worker processes."""
    tmp = Path(tempfile.mkdtemp(prefix="kdutils-ray-"))
    store = ResultStore(tmp / "results")
    for rel, text in records.items():
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_text(text)
    for cfg_dict, blob in checkpoints:
        target = store.checkpoint_path(run_config_from_dict(cfg_dict))
        if not target.exists() or target.stat().st_size != len(blob):
            atomic_write_bytes(target, blob)
    env = {"KDUTILS_RESULTS": str(store.root)}
    if profile is not None:  # the sweep's profile wins over a KDUTILS_PROFILE the worker was started with
        env["KDUTILS_PROFILE"] = profile
    if checkout_commit()["commit"] == "unknown" and code_fingerprint() == stamp.fingerprint:
        env |= {"KDUTILS_GIT_COMMIT": stamp.commit, "KDUTILS_GIT_DIRTY": "1" if stamp.dirty else "0"}
        if stamp.source_dirty is not None:
            env["KDUTILS_SOURCE_DIRTY"] = "1" if stamp.source_dirty else "0"
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield store
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(tmp, ignore_errors=True)


def _made_here(store: ResultStore, records: dict[str, str], extra: Sequence[RunConfig] = ()) -> TaskResult:
    """Records the task wrote or rewrote (with their checkpoints), plus the checkpoints of `extra`."""
    made = []
    for path in sorted(store.root.glob("*/*.json")):
        text = path.read_text()
        if records.get(path.relative_to(store.root).as_posix()) == text:
            continue
        try:
            record = json.loads(text)
        except ValueError:  # a damaged file is not a record (the store skips it too)
            continue
        if isinstance(record, dict) and "key" in record and isinstance(record.get("config"), dict):
            made.append(record)
    cfgs = {c.key(): c for c in [run_config_from_dict(r["config"]) for r in made] + list(extra)}
    checkpoints = [(cfg.to_dict(), store.checkpoint_path(cfg).read_bytes()) for cfg in cfgs.values()
                   if store.checkpoint_path(cfg).exists()]
    return TaskResult(records=made, checkpoints=checkpoints)


def execute_point(notebook_name: str, notebook_text: str, params: dict[str, Any], records: dict[str, str],
                  checkpoints: list[tuple[dict[str, Any], bytes]], stamp: CodeStamp) -> TaskResult:
    """Ray task: one grid point's notebook, executed with papermill in a scratch folder on the worker."""
    import papermill as pm

    with worker_store(records, checkpoints, stamp, params.get("profile")) as store:
        work = store.root.parent / "work"
        work.mkdir()
        source, output = work / notebook_name, work / f"executed-{notebook_name}"
        source.write_text(notebook_text)
        error = detail = ""
        try:
            pm.execute_notebook(str(source), str(output), parameters=params, cwd=str(work), kernel_name="python3",
                                progress_bar=False, log_output=False)
        except Exception as err:  # the notebook raised: send back what it did before, as the local sweep keeps it
            error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
            detail = traceback.format_exc()
        result = _made_here(store, records)
        result.notebook = output.read_text() if output.exists() else None
        result.error, result.detail = error, detail
        return result


def train_runs(cfg_dicts: list[dict[str, Any]], teachers: bool, records: dict[str, str],
               checkpoints: list[tuple[dict[str, Any], bytes]], stamp: CodeStamp) -> TaskResult:
    """Ray task: train runs before the notebooks. `teachers`: each config is a teacher, recorded and
    checkpointed alone (the checkpoint goes back even if the record existed); else one group trained together."""
    from kdutils.training import runner
    from kdutils.training.group_runner import run_grouped

    cfgs = [run_config_from_dict(d) for d in cfg_dicts]
    with worker_store(records, checkpoints, stamp) as store:
        if teachers:
            for cfg in cfgs:
                runner.run(cfg, store, progress=False)
                if not store.checkpoint_path(cfg).exists():  # recorded elsewhere, weights not here: retrain
                    runner.load_model(cfg, store, progress=False)
        else:
            run_grouped(cfgs, store, progress=False)
        return _made_here(store, records, extra=cfgs if teachers else [])


# ---------------------------------------------------------------------------------------------- driver side


#: What --address takes, said in every address error.
ADDRESS_FORMS = ("'auto' (the cluster this machine joined), 'ray://HOST:10001' (a cluster's client port), "
                 "'HOST:PORT' (its GCS address), or no --address to start Ray on this machine")


def check_address(address: str | None) -> str | None:
    """An address Ray can be asked to connect to, else ValueError naming it (before anything is contacted)."""
    if address is None or address in ("auto", "local"):
        return address
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/ "):
        raise ValueError(f"--address {address!r} is not an address Ray takes; use {ADDRESS_FORMS}")
    return address


def connect(address: str | None = None):
    """Ray, connected: the running session if any, else `address` ("auto", "ray://host:10001", or None to
    start a Ray instance on this machine). A cluster that cannot be reached is one ConnectionError line naming
    the address."""
    ray = import_ray()
    if not ray.is_initialized():
        check_address(address)
        try:
            ray.init(address=address)
        except Exception as err:  # ConnectionError, grpc errors, RuntimeError("...could not find any running Ray")
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConnectionError(f"cannot reach a Ray cluster at address {address!r} ({type(err).__name__}: "
                                  f"{first}); check that its head is running, or use {ADDRESS_FORMS}") from err
    return ray


def accept(result: TaskResult, store: ResultStore) -> int:
    """Write a task's records (atomically, at the path `ResultStore.put` gives) and checkpoints on the driver."""
    for record in result.records:
        store.put(run_config_from_dict(record["config"]), record)
    for cfg_dict, blob in result.checkpoints:
        atomic_write_bytes(store.checkpoint_path(run_config_from_dict(cfg_dict)), blob)
    return len(result.records)


def _as_completed(ray, tasks: dict[Any, Any], bar) -> Iterator[tuple[Any, TaskResult | BaseException]]:
    """(item, result) or (item, error) per task, in completion order (`ray.wait`)."""
    waiting = list(tasks)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        for ref in ready:
            try:
                outcome: TaskResult | BaseException = ray.get(ref)
            except Exception as err:  # the task raised, or its worker died (ray.exceptions.WorkerCrashedError)
                outcome = err
            bar.update(1)
            yield tasks[ref], outcome


def _cause(err: BaseException) -> BaseException:
    """The worker-side exception inside a RayTaskError (its message is the useful one)."""
    return getattr(err, "cause", None) or err


def _checkpoints_of(cfgs: list[RunConfig], store: ResultStore) -> list[tuple[dict[str, Any], bytes]]:
    return [(c.to_dict(), store.checkpoint_path(c).read_bytes()) for c in {c.key(): c for c in cfgs}.values()
            if store.checkpoint_path(c).exists()]


def train_on_cluster(ray, cfgs: list[RunConfig], store: ResultStore, options: dict[str, Any], stamp: CodeStamp,
                     progress: bool = True) -> tuple[int, list[str]]:
    """Train the runs of `cfgs` that have no record as Ray tasks: each missing teacher once, then every group of
    students trained together. Returns (runs recorded, failures)."""
    missing = list({c.key(): c for c in cfgs if store.get(c) is None}.values())
    teachers = {c.teacher.key(): c.teacher for c in missing if c.teacher is not None}
    if not missing:
        return 0, []
    store.check_writable()
    # One writer per run, as for local runs: the runs this driver dispatches are locked until their records are
    # in; one another process trains meanwhile is waited for and then loaded, not dispatched.
    with locks.hold([store.lock_path(c) for c in [*missing, *teachers.values()]]):
        return _train_locked(ray, [c for c in missing if store.get(c) is None], store, options, stamp, progress)


def _train_locked(ray, missing: list[RunConfig], store: ResultStore, options: dict[str, Any], stamp: CodeStamp,
                  progress: bool) -> tuple[int, list[str]]:
    """`train_on_cluster` once it holds the locks of `missing` and of their teachers."""
    from kdutils.training.group_runner import partition

    teachers = {c.teacher.key(): c.teacher for c in missing if c.teacher is not None}
    need = [t for t in teachers.values() if store.get(t) is None or not store.checkpoint_path(t).exists()]
    task = ray.remote(train_runs).options(**options)
    recorded, failures = 0, []
    for phase in ("teachers", "students"):
        if phase == "teachers":
            batches = [[t] for t in need]
        else:
            students = [c for c in missing if store.get(c) is None]
            batches = partition(students)
        if not batches:
            continue
        records = ray.put(snapshot(store))
        refs = {task.remote([c.to_dict() for c in batch], phase == "teachers", records,
                            _checkpoints_of([c.teacher for c in batch if c.teacher is not None], store),
                            stamp): batch for batch in batches}
        with tqdm(total=len(refs), desc=f"ray: {phase}", disable=not progress) as bar:
            for batch, outcome in _as_completed(ray, refs, bar):
                if isinstance(outcome, BaseException):
                    cause = _cause(outcome)
                    failures.append(f"{batch[0].experiment}/{batch[0].role} x{len(batch)}: {type(cause).__name__}: "
                                    f"{str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}")
                else:
                    recorded += accept(outcome, store)
        if phase == "teachers" and failures:
            break  # students would each retrain the teacher: let the notebooks report it instead
    return recorded, failures


def run_sweep_ray(notebook: str | Path, grid: dict[str, list[Any]], *, profile: str = "smoke",
                  out_dir: str | Path = "runs", address: str | None = None, progress: bool = True,
                  group: bool = True, max_retries: int = DEFAULT_MAX_RETRIES,
                  resources: dict[str, float] | None = None, yes: bool = False,
                  announce: Callable[[str], None] | None = None) -> SweepReport:
    """`sweep.run_sweep` on a Ray cluster: same outputs, markers, skipping and failure listing.

    resources: what each task asks for (default `point_resources(profile)`); max_retries: Ray's re-executions of
    a task whose worker died (0 makes a killed worker's point fail at once)."""
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    check_address(address)
    with pinned_profile(check_profile(profile)):  # point_configs on the driver read it; workers get it per task
        plan = plan_sweep(notebook, grid, profile, out_dir, yes)
        if announce is not None:
            announce(plan.describe())
        return _run_plan_ray(plan, profile, address, progress, group, max_retries, resources)


def _run_plan_ray(plan: SweepPlan, profile: str, address: str | None, progress: bool, group: bool,
                  max_retries: int, resources: dict[str, float] | None) -> SweepReport:
    """`run_sweep_ray` once the plan is made."""
    notebook, folder, markers, points, pending = plan.notebook, plan.folder, plan.markers, plan.points, plan.pending
    experiment, fixed = plan.experiment, plan.fixed
    report = SweepReport()
    report.skipped = [p for p in points if p not in pending]
    if not pending:
        return report
    ray = connect(address)
    options = {**(resources or point_resources(profile)), "max_retries": max_retries}
    store, stamp = ResultStore(), CodeStamp.here()
    point_cfgs: dict[str, list[RunConfig]] = {}
    if experiment and group:
        problems: list[str] = []
        try:
            chapter = load_chapter(experiment)
            for params in pending:  # a point whose configs cannot be built is left out; its notebook will say why
                try:
                    point_cfgs[point_name(params)] = chapter.points(**{**fixed, **params})
                except Exception as err:
                    problems.append(f"left out (invalid): {params}: {type(err).__name__}: {err}")
            report.grouped, failures = train_on_cluster(ray, [c for cs in point_cfgs.values() for c in cs], store,
                                                        options, stamp, progress)
            problems = failures + problems
        except Exception as err:  # the notebooks still run, and train (or fail) on their own
            problems.insert(0, f"{type(err).__name__}: {err}")
            (folder / "grouped.error.txt").write_text(traceback.format_exc())
        report.group_error = "; ".join(problems)

    task = ray.remote(execute_point).options(**options)
    records, text = ray.put(snapshot(store)), notebook.read_text()
    refs = {}
    for params in pending:
        teachers = [c.teacher for c in point_cfgs.get(point_name(params), []) if c.teacher is not None]
        refs[task.remote(notebook.name, text, params, records, _checkpoints_of(teachers, store), stamp)] = params
    with tqdm(total=len(points), initial=len(report.skipped), desc=f"sweep {notebook.stem} on ray",
              disable=not progress) as bar:
        for params, outcome in _as_completed(ray, refs, bar):
            name = point_name(params)
            output = folder / f"{name}.ipynb"
            crash, result = (outcome, None) if isinstance(outcome, BaseException) else (None, outcome)
            try:
                if isinstance(outcome, BaseException):  # the worker died (after max_retries), or the task broke
                    raise _cause(outcome) from None
                accept(outcome, store)  # records first: a killed driver then loses only the marker
                if outcome.notebook is not None:
                    atomic_write_bytes(output, outcome.notebook.encode())
                if outcome.error:
                    raise NotebookFailed(outcome.error)
            except Exception as failure:
                detail = result.detail if result is not None and result.error else "".join(
                    traceback.format_exception(crash or failure))
                mark_failed(report, folder, params, failure, detail)
                continue
            mark_done(report, markers / f"{name}.json", params, notebook, output)
    return report


__all__ = ["DEFAULT_MAX_RETRIES", "GPU_PROFILES", "CodeStamp", "TaskResult", "accept", "code_fingerprint",
           "connect", "execute_point", "point_resources", "run_sweep_ray", "snapshot", "train_on_cluster",
           "train_runs"]
