"""The hostile-user audit of issue 26: sweeps that run exactly what was asked, a store that trusts content,
not file names, and one-line errors. Each test failed on the code before the fix it covers; the item number of
issue 26 is in its name. The kill/interrupt test is in test_kill_resume.py."""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from chapter_fakes import install_fake_chapter
from helpers import needs_mnist
from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.data import pointsets, registry
from kdutils.data.datasets import ArrayDataset
from kdutils.losses import kd_objective, label_smoothing_ce
from kdutils.store import io as store_io
from kdutils.store.io import atomic_torch_save
from kdutils.store.store import ResultStore
from kdutils.sweeps import sweep
from kdutils.training import group_runner, runner

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).parent / "fixtures" / "sweep_probe.ipynb"

pytestmark = pytest.mark.usefixtures("one_thread")


def teacher_cfg(**kw):
    return RunConfig(experiment="audit", role="teacher", model="mlp", model_kwargs={"hidden": [16]},
                     data=DataConfig(dataset="mnist", n_train=256, n_test=256),
                     train=TrainConfig(epochs=1, batch_size=64, lr=0.05), profile="smoke").with_(**kw)


def cli(*argv):
    """`python -m kdutils ARGV` in this process: (exit code, what it said on stderr is captured by capsys)."""
    from kdutils.__main__ import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1


@pytest.fixture
def fake_sweep(monkeypatch):
    """Replace the sweep itself: the CLI's parsing is under test, and what it hands on is recorded."""
    calls = []

    def run(notebook, grid, **kw):
        calls.append({"grid": grid, **kw, "env_profile": os.environ.get("KDUTILS_PROFILE")})
        return sweep.SweepReport()

    monkeypatch.setattr(sweep, "run_sweep", run)
    return calls


# ---------------------------------------------------------------------------------------------- item 1
def test_item1_repeated_p_name_merges_its_values(fake_sweep, tmp_path):
    assert cli("sweep", PROBE, "-p", "x", "1", "-p", "x", "2", "3", "-p", "x", "1", "--out", tmp_path) == 0
    assert fake_sweep[0]["grid"] == {"x": [1, 2, 3]}  # merged in order, the repeated 1 once


# ---------------------------------------------------------------------------------------------- item 2
def test_item2_profile_given_as_a_parameter_and_as_the_option_is_refused(fake_sweep, tmp_path, capsys):
    assert cli("sweep", PROBE, "-p", "profile", "cpu", "--profile", "smoke", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "-p profile" in err and "--profile" in err and len(err.strip().splitlines()) == 1
    assert cli("sweep", PROBE, "-p", "profile", "cpu", "--out", tmp_path) == 2  # one way only: --profile
    assert fake_sweep == []


def test_item2_run_setting_given_twice_or_in_two_forms_is_refused(monkeypatch, capsys):
    calls = []
    install_fake_chapter(monkeypatch, "audit_cli", run_all=lambda profile="cpu", taus=(1.0,), tau=None, store=None,
                         progress=True: calls.append(1) or [])
    assert cli("run", "audit_cli", "--profile", "smoke", "--set", "tau", "4", "--set", "tau", "8") == 2
    assert "tau" in capsys.readouterr().err
    assert cli("run", "audit_cli", "--profile", "smoke", "--set", "tau", "4", "--set", "taus", "1,2") == 2
    err = capsys.readouterr().err
    assert "tau" in err and "taus" in err
    assert calls == []


# ---------------------------------------------------------------------------------------------- item 3
def test_item3_record_whose_key_is_not_its_file_name_is_damaged_and_named(tmp_path):
    store = ResultStore(tmp_path)
    a, b = teacher_cfg(), teacher_cfg(seed=1)
    store.put(a, {"status": "ok", "metrics": {"accuracy": 0.9}})
    store.put(b, {"status": "ok", "metrics": {"accuracy": 0.1}})
    shutil.copy(store.path(a), store.path(b))  # a's record copied over b's file
    with pytest.warns(RuntimeWarning, match=str(store.path(b)) + ".*key"):
        assert store.get(b) is None  # b is not recorded: it reruns, rewriting its file
    assert [r["key"] for r in store.records("audit")] == [a.key()]  # a counted once, not twice
    assert list(store.table("audit")["key"]) == [a.key()]
    damaged = store.damaged("audit")
    assert list(damaged) == [store.path(b)] and a.key() in damaged[store.path(b)]


# ---------------------------------------------------------------------------------------------- item 4
@pytest.mark.parametrize("content, missing", [({}, "status"), ({"status": "ok", "metrics": {}}, "config"),
                                              ({"status": "ok", "config": {}}, "key")])
def test_item4_record_missing_required_fields_is_damaged_named_and_listed(tmp_path, content, missing):
    store = ResultStore(tmp_path)
    good, bad = teacher_cfg(), teacher_cfg(seed=1)
    store.put(good, {"status": "ok", "metrics": {"accuracy": 0.9}})
    full = {"status": "ok", "key": bad.key(), "config": bad.to_dict()}
    store.path(bad).write_text(json.dumps({k: v for k, v in {**full, **content}.items() if k != missing}))
    with pytest.warns(RuntimeWarning, match=str(store.path(bad)) + f".*'{missing}'"):
        assert [r["key"] for r in store.records("audit")] == [good.key()]
    assert list(store.damaged("audit")) == [store.path(bad)]
    assert store.get(bad) is None


def test_item4_json_files_that_are_not_named_as_records_are_not_records(tmp_path):
    """results/bench and results/pictures hold other JSON files: neither records nor damaged."""
    store = ResultStore(tmp_path)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "mlp-cpu.json").write_text('{"throughput": 1}')
    store.put(teacher_cfg(), {"status": "ok"})
    assert [r["key"] for r in store.records()] == [teacher_cfg().key()] and store.damaged() == {}


# ---------------------------------------------------------------------------------------------- item 10
def test_item10_table_survives_records_without_config_or_with_bad_metrics(tmp_path):
    store = ResultStore(tmp_path)
    good, no_config, bad_metrics = teacher_cfg(), teacher_cfg(seed=1), teacher_cfg(seed=2)
    store.put(good, {"status": "ok", "metrics": {"accuracy": 0.9}})
    store.path(no_config).write_text(json.dumps({"status": "ok", "key": no_config.key(), "metrics": {}}))
    store.put(bad_metrics, {"status": "ok", "metrics": [1, 2]})
    with pytest.warns(RuntimeWarning):
        table = store.table("audit")
    assert list(table["key"]) == [good.key()]
    assert set(store.damaged("audit")) == {store.path(no_config), store.path(bad_metrics)}


# ---------------------------------------------------------------------------------------------- item 5
def _toy_pointset_loader(split="train", root=None, download=None, built=None):
    def build():
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        x = torch.randn(64, 5, 3, generator=gen)
        return ArrayDataset(x, (x.sum(dim=(1, 2)) > 0).long(), ["neg", "pos"], "audit_sets")

    return pointsets._cached(f"audit_sets_{split}", {"split": split}, build, True)


def test_item5_point_set_cache_rebuild_reaches_the_records_recovered_note(private, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "audit_sets", _toy_pointset_loader)
    runner.load_split.cache_clear()
    cfg = teacher_cfg(data=DataConfig(dataset="audit_sets"), model_kwargs={"hidden": [8]})
    assert "recovered" not in runner.run(cfg, private, progress=False)  # builds the cache
    cached = sorted((Path(os.environ["KDUTILS_CACHE"]) / "pointsets").glob("audit_sets_train-*.pt"))
    assert len(cached) == 1
    cached[0].write_bytes(cached[0].read_bytes()[:60])  # truncated by a kill
    runner.load_split.cache_clear()
    with pytest.warns(RuntimeWarning, match=str(cached[0])):
        rec = runner.run(cfg.with_(seed=1), private, progress=False)
    assert any(str(cached[0]) in note for note in rec["recovered"])
    cached[0].write_bytes(cached[0].read_bytes()[:60])
    runner.load_split.cache_clear()
    with pytest.warns(RuntimeWarning, match=str(cached[0])):
        grouped = group_runner.run_grouped([cfg.with_(seed=2), cfg.with_(seed=3)], private, progress=False)
    assert all(any(str(cached[0]) in note for note in rec["recovered"]) for rec in grouped)
    runner.load_split.cache_clear()


@needs_mnist
def test_item5_a_chapter_runner_notes_its_rebuilt_teacher_checkpoint(private, monkeypatch):
    """The fidelity chapter trains through its own runner (`run_spec`): a teacher rebuilt there is noted too."""
    import dataclasses

    from kdutils.chapters.does_kd_work import plan as dkw
    from kdutils.chapters.does_kd_work import run as frun

    monkeypatch.setattr(frun, "_TEACHERS", {})
    spec = dkw.claim_specs(6, "smoke", teacher_lr=0.1, lrs={"none": 0.05})[0]
    assert "recovered" not in frun.run_spec(spec, private, progress=False)
    ckpt = private.checkpoint_path(spec.teachers[0])
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    frun._TEACHERS.clear()
    with pytest.warns(RuntimeWarning, match=str(ckpt)):
        rec = frun.run_spec(dataclasses.replace(spec, seed=spec.seed + 1), private, progress=False)
    assert any(str(ckpt) in note for note in rec["recovered"])


# ---------------------------------------------------------------------------------------------- item 6
def test_item6_nan_logits_raise_in_the_cross_entropy_terms_too():
    logits, targets = torch.zeros(2, 3), torch.tensor([0, 1])
    logits[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"logits holds nan at \(row, class\) \(1, 2\)"):
        kd_objective(logits, targets, None, tau=2.0, alpha=0.0)
    with pytest.raises(ValueError, match=r"logits holds nan"):
        label_smoothing_ce(logits, targets, 0.1)
    with pytest.raises(ValueError, match=r"logits holds nan"):
        kd_objective(logits, targets, torch.zeros(2, 3), tau=2.0, alpha=0.5)
    # the training loops skip the check (they test each step's loss instead): NaN comes back, no error
    assert torch.isnan(kd_objective(logits, targets, None, tau=2.0, alpha=0.0, check_finite=False))
    assert torch.isnan(label_smoothing_ce(logits, targets, 0.1, check_finite=False))


# ---------------------------------------------------------------------------------------------- item 7
def test_item7_grid_above_the_threshold_needs_yes(fake_sweep, tmp_path, capsys):
    values = [str(v) for v in range(sweep.MAX_UNCONFIRMED_POINTS + 1)]
    assert cli("sweep", PROBE, "-p", "x", *values, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{len(values)} points" in err and "--yes" in err and fake_sweep == []
    assert cli("sweep", PROBE, "-p", "x", *values, "--out", tmp_path, "--yes") == 0
    assert fake_sweep[0]["yes"] is True


def test_item7_run_sweep_refuses_a_large_grid_unless_confirmed(tmp_path):
    ran = []
    grid = {"x": list(range(sweep.MAX_UNCONFIRMED_POINTS + 1))}
    with pytest.raises(ValueError, match=f"{len(grid['x'])} points"):
        sweep.run_sweep(PROBE, grid, out_dir=tmp_path, executor=lambda *a: ran.append(a), progress=False)
    assert ran == [] and not (tmp_path / PROBE.stem).exists()  # refused before anything was made
    assert sweep.check_grid_size(grid, yes=True) == len(grid["x"])
    assert sweep.check_grid_size({"x": [1, 2], "y": list(range(100))}, yes=False) == 200  # at the threshold


def test_item7_sweep_prints_its_size_and_a_time_estimate_before_running(tmp_path, monkeypatch):
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    said = []
    ran = []
    sweep.run_sweep(PROBE, {"x": [1, 2]}, out_dir=tmp_path, progress=False, announce=said.append,
                    executor=lambda nb, out, params, cwd: ran.append((len(said), time.sleep(0.05))))
    assert ran[0][0] == 1 and "2 points" in said[0] and "2 to run" in said[0]  # said before the first point ran
    assert "not known yet" in said[0]
    said.clear()
    sweep.run_sweep(PROBE, {"x": [1, 2, 3, 4]}, out_dir=tmp_path, progress=False, announce=said.append,
                    executor=lambda *a: None)
    assert "4 points" in said[0] and "2 to run" in said[0] and "2 already done" in said[0]
    assert "per point" in said[0] and "s" in said[0].split("per point")[0]


# ---------------------------------------------------------------------------------------------- item 8
def test_item8_results_path_that_is_a_file_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KDUTILS_RESULTS", str(blocker))
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("trained before checking the results folder"))
    with pytest.raises(store_io.StorageError, match=str(blocker)):
        runner.run(teacher_cfg(), progress=False)
    ran = []
    with pytest.raises(store_io.StorageError, match=str(blocker)):
        sweep.run_sweep(PROBE, {"x": [1]}, out_dir=tmp_path / "runs", executor=lambda *a: ran.append(a),
                        progress=False)
    assert ran == []
    assert cli("run", "hinton", "--profile", "smoke") == 1
    err = capsys.readouterr().err.strip()
    assert str(blocker) in err and len(err.splitlines()) == 1


def test_item8_read_only_results_folder_is_refused_before_any_training(tmp_path, monkeypatch):
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    real_mkstemp = store_io.tempfile.mkstemp

    def read_only_mkstemp(*a, dir=None, **kw):  # root passes permission bits: a read-only mount is simulated
        if dir is not None and (Path(dir) == root or root in Path(dir).parents):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(store_io.tempfile, "mkstemp", read_only_mkstemp)
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("trained before checking the results folder"))
    with pytest.raises(store_io.StorageError, match=f"{root}.*[Rr]ead-only"):
        runner.run(teacher_cfg(), ResultStore(root), progress=False)


# ---------------------------------------------------------------------------------------------- item 9
HOLDER = textwrap.dedent("""
    import sys, time
    from kdutils.config import DataConfig, RunConfig, TrainConfig
    from kdutils.store import locks
    from kdutils.store.store import ResultStore
    store = ResultStore(sys.argv[1])
    cfg = RunConfig(experiment="audit", role="teacher", model="mlp", model_kwargs={"hidden": [16]},
                    data=DataConfig(dataset="mnist", n_train=256, n_test=256),
                    train=TrainConfig(epochs=1, batch_size=64, lr=0.05), profile="smoke")
    with locks.hold([store.lock_path(cfg)]):
        print("held", flush=True)
        if sys.argv[2] == "write":
            time.sleep(1.0)
            store.put(cfg, {"status": "ok", "metrics": {"accuracy": 0.5}, "by": "the other writer"})
        else:
            time.sleep(600)
""")


def _holder(root, mode):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), mode], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_item9_a_second_writer_waits_for_the_first_and_loads_its_record(private, monkeypatch):
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("the same run was trained twice"))
    proc = _holder(private.root, "write")
    try:
        rec = runner.run(teacher_cfg(), private, progress=False)
    finally:
        proc.wait(timeout=60)
    assert rec["by"] == "the other writer"


@needs_mnist
def test_item9_grouped_runs_skip_what_another_writer_recorded_while_they_waited(private, monkeypatch):
    trained = []
    real_run = runner.run

    def counting_run(cfg, *a, **kw):
        trained.append(cfg.seed)
        return real_run(cfg, *a, **kw)

    monkeypatch.setattr(runner, "run", counting_run)
    proc = _holder(private.root, "write")
    try:
        records = group_runner.run_grouped([teacher_cfg(), teacher_cfg(seed=1)], private, progress=False)
    finally:
        proc.wait(timeout=60)
    assert records[0]["by"] == "the other writer" and records[1]["status"] == "ok"
    assert trained == [1]  # only the run nobody else had trained


def test_item9_the_lock_of_a_killed_writer_is_free_at_once(private):
    from kdutils.store import locks

    proc = _holder(private.root, "hang")
    path = private.lock_path(teacher_cfg())
    held_by = locks.holder(path)
    assert held_by["pid"] == proc.pid and held_by["host"]
    with pytest.raises(TimeoutError, match=f"pid {proc.pid}"):
        with locks.hold([path], timeout=0.3):
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    start = time.monotonic()
    with locks.hold([path], timeout=10):
        assert locks.holder(path)["pid"] == os.getpid()
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------- item 11
@pytest.mark.parametrize("failure", ["torch", "oserror"])
def test_item11_full_disk_is_one_line_naming_the_path(tmp_path, monkeypatch, failure):
    target = tmp_path / "cache" / "logits" / "t.pt"

    def full_disk_save(obj, fh, *a, **kw):
        fh.write(b"PK\x03\x04")
        if failure == "torch":  # what torch's zip writer says when the disk fills
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1088 vs 982")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setattr(store_io, "_free_bytes", lambda folder: 0)
    with pytest.raises(store_io.StorageError) as err:
        atomic_torch_save({"w": torch.ones(3)}, target)
    message = str(err.value)
    assert str(target) in message and "no space left" in message.lower() and "\n" not in message
    assert err.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []  # no temporary file left behind


# ---------------------------------------------------------------------------------------------- item 12
def test_item12_pointsets_can_be_the_first_import():
    code = ("import kdutils.data.pointsets as p; from kdutils.data.registry import check_dataset_name; "
            "check_dataset_name('set_mnist'); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# ---------------------------------------------------------------------------------------------- item 13
@pytest.mark.parametrize("field", ["seed", "split_seed"])
@pytest.mark.parametrize("value", [2**64, 2**63, -1])
def test_item13_seeds_outside_what_torch_takes_are_refused_at_config_time(field, value):
    with pytest.raises(ValueError, match=rf"{field} must be an integer in 0\.\.2\*\*63-1.*{value}"):
        if field == "seed":
            teacher_cfg(seed=value)
        else:
            DataConfig(split_seed=value)
    teacher_cfg(seed=2**63 - 1)


def test_item13_list_settings_are_parsed_or_refused_in_one_line(monkeypatch, capsys):
    calls = []
    install_fake_chapter(monkeypatch, "audit_lists", run_all=lambda profile="cpu", taus=(1.0,), alphas=(0.9,),
                         seeds=None, store=None, progress=True: calls.append((taus, alphas, seeds)) or [])
    assert cli("run", "audit_lists", "--profile", "smoke", "--set", "taus", "1,2,4", "--set", "alphas", "0.5",
               "--set", "seeds", "0, 1") == 0
    assert calls == [((1, 2, 4), (0.5,), (0, 1))]
    for name, text, needle in [("taus", "1,abc", "abc"), ("seeds", "0,1.5", "1.5"), ("taus", "", "empty"),
                               ("seeds", "-1", "-1")]:
        assert cli("run", "audit_lists", "--profile", "smoke", "--set", name, text) == 2
        err = capsys.readouterr().err.strip()
        assert f"--set {name}" in err and needle in err and len(err.splitlines()) == 1
    assert len(calls) == 1


@pytest.mark.parametrize("kind", ["not-json", "folder"])
def test_item13_notebook_that_is_not_json_or_is_a_folder_is_named(tmp_path, kind, capsys):
    bad = tmp_path / "broken.ipynb"
    if kind == "folder":
        bad.mkdir()
    else:
        bad.write_text("this is not JSON {")
    with pytest.raises(ValueError, match=str(bad)):
        sweep.run_sweep(bad, {"x": [1]}, out_dir=tmp_path / "runs", executor=lambda *a: None, progress=False)
    assert cli("sweep", bad, "-p", "x", "1", "--out", tmp_path / "runs") == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------- item 14
def test_item14_bad_profile_variable_is_named(monkeypatch, tmp_path, capsys):
    from kdutils.store.profiles import PROFILES, resolve_profile

    monkeypatch.setenv("KDUTILS_PROFILE", "garbage")
    allowed = re.escape(", ".join(PROFILES))  # every profile is named, whatever profiles exist
    with pytest.raises(ValueError, match=rf"KDUTILS_PROFILE='garbage'.*{allowed}"):
        resolve_profile("cpu")
    assert cli("sweep", PROBE, "-p", "x", "1", "--out", tmp_path) == 2
    assert "KDUTILS_PROFILE='garbage'" in capsys.readouterr().err


def test_item14_explicit_profile_wins_over_the_variable_in_sweeps_and_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KDUTILS_PROFILE", "cpu")
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    seen = []
    monkeypatch.setattr(sweep, "papermill_executor",
                        lambda nb, out, params, cwd: seen.append((params["profile"], os.environ["KDUTILS_PROFILE"])))
    assert cli("sweep", PROBE, "-p", "x", "1", "--profile", "smoke", "--out", tmp_path) == 0
    assert seen == [("smoke", "smoke")]  # what the notebook's kernel inherits says smoke too
    assert os.environ["KDUTILS_PROFILE"] == "cpu"  # restored after the sweep
    assert "KDUTILS_PROFILE" in capsys.readouterr().err  # the override is said, in one line
    assert cli("sweep", PROBE, "-p", "x", "2", "--out", tmp_path) == 0  # no --profile: the variable's
    assert seen[-1] == ("cpu", "cpu")

    calls = []
    install_fake_chapter(monkeypatch, "audit_profile", run_all=lambda profile="cpu", store=None, progress=True:
                         calls.append((profile, os.environ["KDUTILS_PROFILE"])) or [])
    assert cli("run", "audit_profile", "--profile", "smoke") == 0
    assert calls == [("smoke", "smoke")]


# ---------------------------------------------------------------------------------------------- item 15
def test_item15_unknown_chapter_lists_the_chapters(capsys):
    assert cli("run", "hintn", "--profile", "smoke") == 2
    err = capsys.readouterr().err.strip()
    assert "'hintn'" in err and all(c in err for c in ("hinton", "tgeo", "ls_kd", "invariance", "does_kd_work"))
    assert len(err.splitlines()) == 1


def test_item15_bad_device_variable_is_named(monkeypatch, capsys):
    monkeypatch.setenv("KDUTILS_DEVICE", "gpu")
    with pytest.raises(ValueError, match=r"KDUTILS_DEVICE='gpu'.*cpu.*cuda"):
        runner.default_device()
    assert cli("run", "hinton", "--profile", "smoke") == 2
    err = capsys.readouterr().err.strip()
    assert "KDUTILS_DEVICE='gpu'" in err and len(err.splitlines()) == 1


def test_item15_unreachable_ray_address_is_one_line(monkeypatch, tmp_path, capsys):
    from kdutils.sweeps import ray_executor

    class FakeRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(address=None):
            raise ConnectionError("ray client connection timeout\n  (grpc details...)")

    monkeypatch.setattr(ray_executor, "import_ray", lambda: FakeRay)
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    with pytest.raises(ConnectionError, match=r"'ray://10\.0\.0\.1:10001'.*auto"):
        ray_executor.connect("ray://10.0.0.1:10001")
    assert cli("sweep", PROBE, "-p", "x", "1", "--executor", "ray", "--address", "ray://10.0.0.1:10001",
               "--out", tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert "ray://10.0.0.1:10001" in err and len(err.splitlines()) == 1
    assert cli("sweep", PROBE, "-p", "x", "1", "--executor", "ray", "--address", "http//nowhere",
               "--out", tmp_path) == 2  # not an address at all: refused before contacting anything
    assert "'http//nowhere'" in capsys.readouterr().err


def test_item15_ctrl_c_exits_130_saying_how_to_resume(monkeypatch, capsys):
    def run_all(profile="cpu", store=None, progress=True):
        raise KeyboardInterrupt

    install_fake_chapter(monkeypatch, "audit_interrupt", run_all=run_all)
    assert cli("run", "audit_interrupt", "--profile", "smoke") == 130
    err = capsys.readouterr().err.strip()
    assert "rerun the same command to resume" in err and "Traceback" not in err
