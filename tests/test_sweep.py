"""The sweep command: grid expansion, skipping finished points, surviving failures and kills."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kdutils.sweeps.sweep import completed_points, expand_grid, parse_value, run_sweep

PROBE = Path(__file__).parent / "fixtures" / "sweep_probe.ipynb"


def test_expand_grid_and_parse_values():
    grid = expand_grid({"tau": [1, 4], "alpha": [0.5, 1.0]})
    assert grid == [{"tau": 1, "alpha": 0.5}, {"tau": 1, "alpha": 1.0}, {"tau": 4, "alpha": 0.5},
                    {"tau": 4, "alpha": 1.0}]
    assert [parse_value(v) for v in ("4", "4.0", "1e-3", "true", "cpu")] == [4, 4.0, 1e-3, True, "cpu"]


def test_failed_points_do_not_stop_the_sweep_and_rerun_later(tmp_path):
    calls = []

    def flaky(notebook, output, params, cwd):
        calls.append(params["x"])
        if params["x"] == 2:
            raise RuntimeError("boom at 2")

    report = run_sweep(PROBE, {"x": [1, 2, 3]}, out_dir=tmp_path, executor=flaky, progress=False)
    assert calls == [1, 2, 3]
    assert [p["x"] for p in report.done] == [1, 3]
    assert [(p["x"], "boom at 2" in err) for p, err in report.failed] == [(2, True)]
    assert "1 failed" in report.summary() and "boom at 2" in report.summary()
    calls.clear()
    report = run_sweep(PROBE, {"x": [1, 2, 3]}, out_dir=tmp_path, executor=lambda *a: calls.append(a[2]["x"]),
                       progress=False)
    assert calls == [2] and len(report.skipped) == 2  # only the failed point runs again


def test_bad_profile_and_missing_notebook(tmp_path):
    with pytest.raises(ValueError, match="'huge'"):
        run_sweep(PROBE, {"x": [1]}, profile="huge", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.ipynb"):
        run_sweep(tmp_path / "nope.ipynb", {"x": [1]}, out_dir=tmp_path)


def _sweep_cmd(out, log, delay):
    return [sys.executable, "-m", "kdutils", "sweep", str(PROBE), "-p", "x", "1", "2", "3", "4",
            "-p", "log", str(log), "-p", "delay", str(delay), "--out", str(out)]


def test_sweep_resumes_after_kill_without_losing_or_repeating_points(tmp_path):
    out, log = tmp_path / "runs", tmp_path / "probe.log"
    markers = out / PROBE.stem / ".done"
    proc = subprocess.Popen(_sweep_cmd(out, log, 1.0), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its kernel, mid-grid
    proc.wait()
    done_before = {p["x"] for p in completed_points(PROBE, out)}
    assert len(done_before) >= 2 and len(done_before) < 4, "the kill should land mid-grid"

    result = subprocess.run(_sweep_cmd(out, log, 1.0), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(done_before)} already done" in result.stdout
    events = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    assert {p["x"] for p in completed_points(PROBE, out)} == {1, 2, 3, 4}  # nothing lost
    for x in done_before:  # nothing finished before the kill ran again
        assert events[("start", str(x))] == 1 and events[("end", str(x))] == 1
    for x in {1, 2, 3, 4} - done_before:
        assert events[("end", str(x))] >= 1


def test_sweep_command_reports_failures_with_exit_code(tmp_path):
    cmd = [sys.executable, "-m", "kdutils", "sweep", str(PROBE), "-p", "x", "1", "2", "-p", "fail_on", "2",
           "-p", "log", str(tmp_path / "l.log"), "--out", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "1 ran, 0 already done, 1 failed" in result.stdout and "x': 2" in result.stdout


def test_run_command_runs_a_chapter_without_jupyter(tmp_path, monkeypatch, capsys):
    import json

    from kdutils.__main__ import main

    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    assert main(["run", "hinton", "--profile", "smoke", "--set", "tau", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["role"] for line in lines] == ["teacher", "student", "student", "distilled"]  # alone: 2 seeds
    assert all(line["status"] == "ok" for line in lines)
    # plus the lr selection runs (2 lrs each for the teacher, the student alone and tau=4), recorded too
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "hinton_mnist").glob("*.json")]
    assert len(records) == 4 + 6 and sum(r["config"]["role"].startswith("select:") for r in records) == 6
