"""The Ray executor: a real local Ray cluster (2 CPUs) runs sweep grids: skipping, failures, a killed worker,
and the Hinton smoke grid whose records and checkpoints come back to a driver that shares no folder with it."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import kdutils.store.provenance as provenance_mod
from kdutils.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from kdutils.store.provenance import git_commit, provenance
from kdutils.store.store import ResultStore
from kdutils.sweeps import ray_executor
from kdutils.sweeps.ray_executor import CodeStamp, code_fingerprint, point_resources, run_sweep_ray
from kdutils.sweeps.sweep import completed_points, point_name

PROBE = Path(__file__).parent / "fixtures" / "ray_probe.ipynb"


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module; its workers inherit this process's environment as it is now (the
    scratch KDUTILS_CACHE/KDUTILS_RESULTS of conftest.py), not later monkeypatches: those are the driver's."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _is_our_commit(commit: str) -> bool:
    """A commit of this checkout's history (the shared tree may gain commits while a test runs)."""
    root = Path(__file__).resolve().parents[1]
    return (len(commit) == 40 and subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=root,
                                                 capture_output=True).returncode == 0)


def _events(log: Path) -> Counter:
    return Counter(tuple(line.split()) for line in log.read_text().splitlines())


def test_point_resources_ask_for_a_gpu_only_at_paper_scale():
    assert point_resources("full") == {"num_cpus": 1, "num_gpus": 1}
    assert point_resources("smoke") == point_resources("cpu") == {"num_cpus": 1}
    with pytest.raises(ValueError, match="'huge'"):
        point_resources("huge")


def test_bad_input_is_refused_before_any_cluster_is_contacted(tmp_path):
    with pytest.raises(ValueError, match="'taw'"):
        run_sweep_ray(PROBE, {"taw": [1]}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="max_retries .* got -1"):
        run_sweep_ray(PROBE, {"x": [1]}, out_dir=tmp_path, max_retries=-1)
    with pytest.raises(FileNotFoundError, match="nope.ipynb"):
        run_sweep_ray(tmp_path / "nope.ipynb", {"x": [1]}, out_dir=tmp_path)
    from kdutils.__main__ import main

    with pytest.raises(SystemExit, match="--executor ray only"):
        main(["sweep", str(PROBE), "-p", "x", "1", "--address", "auto"])
    assert not ray.is_initialized()


def test_kdutils_works_without_ray_and_the_executor_says_how_to_get_it():
    code = ("import sys; sys.modules['ray'] = None\n"
            "import kdutils.__main__, kdutils.sweeps.sweep, kdutils.sweeps.ray_executor as rx\n"
            "try:\n    rx.import_ray()\nexcept ImportError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "requirements-ray.txt" in done.stdout and ".[ray]" in done.stdout


def test_failed_point_is_listed_the_rest_go_on_and_recorded_points_are_skipped(cluster, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))  # the driver's store; workers never see it
    log, out = tmp_path / "probe.log", tmp_path / "runs"
    grid = {"x": [1, 2], "log": [str(log)], "record_x": [1], "fail_on": [2]}
    report = run_sweep_ray(PROBE, grid, out_dir=out, max_retries=0, progress=True)
    assert [p["x"] for p in report.done] == [1]
    assert [(p["x"], "probe failure at x=2" in err) for p, err in report.failed] == [(2, True)]
    assert "2/2" in capsys.readouterr().err  # the bar over the grid reached the end
    folder = out / PROBE.stem
    executed = json.loads((folder / f"{point_name(report.done[0])}.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["x"] == 1  # executed there, written here
    assert "probe failure at x=2" in (folder / f"{point_name(report.failed[0][0])}.error.txt").read_text()
    assert {p["x"] for p in completed_points(PROBE, out)} == {1}
    # The run point 1 trained was recorded on a worker and written into this store, with the provenance a
    # local record has: same fields, a commit of this checkout, the worker's device.
    (record,) = ResultStore().records("ray_probe")
    assert record["config"]["role"] == "x1" and record["status"] == "ok" and record["metrics"]["accuracy"] > 0.1
    assert set(record["provenance"]) == set(provenance("cpu"))
    assert _is_our_commit(record["provenance"]["commit"]) and record["provenance"]["device"].startswith("cpu")

    report = run_sweep_ray(PROBE, grid, out_dir=out, max_retries=0, progress=False)
    assert [p["x"] for p in report.skipped] == [1] and [p["x"] for p, _ in report.failed] == [2]
    events = _events(log)
    assert [events[("start", x)] for x in "12"] == [1, 2]  # only the failed point ran again
    assert [events[("end", x)] for x in "12"] == [1, 0]


def _kill_when_held(hold_dir: Path, killed: dict) -> None:
    """Kill the Ray worker running the held point as soon as it says who it is."""
    pids = hold_dir / "pids"
    deadline = time.time() + 60
    while not pids.exists() and time.time() < deadline:
        time.sleep(0.05)
    worker, kernel = map(int, pids.read_text().split())
    killed["cmdline"] = Path(f"/proc/{worker}/cmdline").read_bytes().decode(errors="replace")
    killed["kernel"] = kernel
    os.kill(worker, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_killed_worker_loses_its_point_only_and_a_rerun_completes_it_once(cluster, tmp_path):
    log, out, hold = tmp_path / "probe.log", tmp_path / "runs", tmp_path / "hold"
    hold.mkdir()
    grid = {"x": [1, 2, 3], "log": [str(log)], "hold_x": [2], "hold_dir": [str(hold)]}
    killed: dict = {}
    killer = threading.Thread(target=_kill_when_held, args=(hold, killed), daemon=True)
    killer.start()
    report = run_sweep_ray(PROBE, grid, out_dir=out, max_retries=0, progress=False)
    killer.join(timeout=5)
    assert killed["cmdline"].startswith("ray::"), killed  # it was a Ray worker process that died
    assert sorted(p["x"] for p in report.done) == [1, 3]  # the rest went on
    assert [p["x"] for p, _ in report.failed] == [2] and "Worker" in report.failed[0][1], report.failed
    deadline = time.time() + 10  # the point's kernel notices its parent is gone and exits (ipykernel's poller)
    while _alive(killed["kernel"]) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(killed["kernel"])
    assert _events(log)[("end", "2")] == 0

    (hold / "release").touch()
    report = run_sweep_ray(PROBE, grid, out_dir=out, max_retries=0, progress=False)
    assert [p["x"] for p in report.done] == [2] and sorted(p["x"] for p in report.skipped) == [1, 3]
    assert not report.failed
    events = _events(log)
    assert [events[("start", x)] for x in "123"] == [1, 2, 1]  # nothing finished ran again
    assert [events[("end", x)] for x in "123"] == [1, 1, 1]  # every point finished exactly once
    assert {p["x"] for p in completed_points(PROBE, out)} == {1, 2, 3}


def test_with_retries_ray_reexecutes_a_killed_workers_point_in_the_same_sweep(cluster, tmp_path):
    """The policy for real use (max_retries > 0): a point whose worker died runs again at once and completes."""
    log, out, hold = tmp_path / "probe.log", tmp_path / "runs", tmp_path / "hold"
    hold.mkdir()
    killed: dict = {}

    def kill_then_release():
        _kill_when_held(hold, killed)
        deadline = time.time() + 10
        while _alive(killed["kernel"]) and time.time() < deadline:  # the dead worker's kernel exits on its own
            time.sleep(0.05)
        (hold / "release").touch()  # the retry is not held

    killer = threading.Thread(target=kill_then_release, daemon=True)
    killer.start()
    grid = {"x": [7], "log": [str(log)], "hold_x": [7], "hold_dir": [str(hold)]}
    report = run_sweep_ray(PROBE, grid, out_dir=out, max_retries=1, progress=False)
    killer.join(timeout=15)
    assert "kernel" in killed and [p["x"] for p in report.done] == [7] and not report.failed
    assert _events(log) == {("start", "7"): 2, ("end", "7"): 1}  # killed once, finished once


def _tiny(role: str, **kw) -> RunConfig:
    return RunConfig(experiment="ray_train", role=role, model="mlp", model_kwargs={"hidden": [16]},
                     data=DataConfig("mnist", n_train=256, n_test=128), train=TrainConfig(epochs=1, batch_size=64),
                     profile="smoke", **kw)


def test_a_notebook_naming_its_experiment_gets_its_runs_trained_as_tasks_first(cluster, tmp_path, monkeypatch):
    """The sweep asks the experiment module for each point's runs, trains the teacher as one task and the
    students as another (with the teacher's weights shipped), then runs the notebooks; the done rule then
    needs every run of the point recorded in the driver's store."""
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    teacher = _tiny("teacher")
    from chapter_fakes import install_fake_chapter

    install_fake_chapter(monkeypatch, "ray_fake", point_configs=lambda profile, x, **_: [
        teacher, _tiny(f"kd{x}", teacher=teacher, tau=float(x), alpha=0.5)])
    notebook = json.loads(PROBE.read_text())
    notebook["metadata"]["kdutils"] = {"experiment": "ray_fake"}
    (tmp_path / "fake.ipynb").write_text(json.dumps(notebook))
    grid = {"x": [2, 3], "log": [str(tmp_path / "probe.log")]}
    report = run_sweep_ray(tmp_path / "fake.ipynb", grid, out_dir=tmp_path / "runs", max_retries=0, progress=False)
    assert sorted(p["x"] for p in report.done) == [2, 3] and not report.group_error, report.summary()
    assert report.grouped == 3  # the teacher, then kd2 and kd3 trained together
    store = ResultStore()
    assert sorted(r["config"]["role"] for r in store.records("ray_train")) == ["kd2", "kd3", "teacher"]
    cfgs = [teacher] + [_tiny(f"kd{x}", teacher=teacher, tau=float(x), alpha=0.5) for x in (2, 3)]
    assert "trained_together" not in store.get(teacher)  # alone, first
    assert [store.get(c)["trained_together"] for c in cfgs[1:]] == [2, 2]  # one group, one task
    for cfg in cfgs:  # each run's weights came back to the driver's cache (no folder shared with the workers)
        assert store.checkpoint_path(cfg).exists() and _is_our_commit(store.get(cfg)["provenance"]["commit"])
    report = run_sweep_ray(tmp_path / "fake.ipynb", grid, out_dir=tmp_path / "runs", max_retries=0, progress=False)
    assert len(report.skipped) == 2 and report.grouped == 0


def test_worker_records_name_the_drivers_commit_only_when_their_code_is_the_drivers(monkeypatch, tmp_path):
    """A worker with an installed copy of kdutils (no .git) records the driver's commit iff the source matches."""
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ray_executor, "checkout_commit", lambda: {"commit": "unknown", "dirty": False})
    monkeypatch.setattr(provenance_mod, "checkout_commit", lambda: {"commit": "unknown", "dirty": False})
    same = CodeStamp("abc123", True, code_fingerprint(), source_dirty=False)
    with ray_executor.worker_store({"e/k.json": "{}"}, [], same) as store:
        assert git_commit() == {"commit": "abc123", "dirty": True}
        assert provenance_mod.source_state() == {"kdutils_sha256": code_fingerprint(), "kdutils_dirty": False}
        assert (store.root / "e" / "k.json").read_text() == "{}" and os.environ["KDUTILS_RESULTS"] == str(store.root)
    assert "KDUTILS_GIT_COMMIT" not in os.environ and os.environ["KDUTILS_RESULTS"] != str(store.root)
    assert "KDUTILS_SOURCE_DIRTY" not in os.environ
    assert not store.root.exists()  # the private store is gone once the task is over
    with ray_executor.worker_store({}, [], CodeStamp("abc123", False, "other source")):
        assert git_commit()["commit"] == "unknown"


def test_sweep_command_with_the_ray_executor(cluster, tmp_path, capsys):
    from kdutils.__main__ import main

    args = ["sweep", str(PROBE), "-p", "x", "1", "2", "-p", "fail_on", "2", "-p", "log", str(tmp_path / "l.log"),
            "--out", str(tmp_path), "--executor", "ray", "--address", cluster, "--max-retries", "0"]
    assert main(args) == 1  # a failed point: exit code 1, as the local sweep
    out = capsys.readouterr().out
    assert "1 ran, 0 already done, 1 failed" in out and "probe failure at x=2" in out
    assert _events(tmp_path / "l.log") == {("start", "1"): 1, ("end", "1"): 1, ("start", "2"): 1}
