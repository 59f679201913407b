"""Bad input and damaged files (issue 14) and failure detection: fail loudly, name the culprit, recover.

Each test here failed on the code before the fix it covers (the item number of issue 14 is in its name or
docstring)."""
import gzip
import json
import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import DATA_ROOT, needs_mnist, write_tar_gz
from kdutils.config import DataConfig, RunConfig, TrainConfig
from kdutils.data import datasets as data_mod, pointsets, modelnet, registry
from kdutils.data.device_loader import DeviceLoader
from kdutils.losses import kd_loss
from kdutils.store.io import atomic_torch_save
from kdutils.store.store import FINISHED, ResultStore
from kdutils.sweeps import sweep
from kdutils.training import group_runner, runner
from kdutils.training.multi_student import fit_students
from kdutils.training.stacked import stacked_kd_objective
from kdutils.training.train import fit

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).parent / "fixtures" / "sweep_probe.ipynb"

pytestmark = pytest.mark.usefixtures("one_thread")


DATA = DataConfig(dataset="mnist", n_train=256, n_test=256)


def teacher_cfg(**kw):
    return RunConfig(experiment="robust", role="teacher", model="mlp", model_kwargs={"hidden": [32]}, data=DATA,
                     train=TrainConfig(epochs=1, batch_size=64, lr=0.05), profile="smoke").with_(**kw)


def distilled_cfg(tau=4.0, **kw):
    return RunConfig(experiment="robust", role="distilled", model="mlp", model_kwargs={"hidden": [16]}, data=DATA,
                     train=TrainConfig(epochs=1, batch_size=64, lr=0.05), teacher=teacher_cfg(), tau=tau,
                     alpha=0.5, profile="smoke").with_(**kw)


# ---------------------------------------------------------------------------------------------- item 1
def test_item1_misspelled_sweep_parameter_is_an_error_before_anything_runs(tmp_path):
    calls = []
    with pytest.raises(ValueError) as err:
        sweep.run_sweep(PROBE, {"taw": [5]}, out_dir=tmp_path, executor=lambda *a: calls.append(a), progress=False)
    message = str(err.value)
    assert "'taw'" in message and all(name in message for name in ("x", "log", "delay", "fail_on", "profile"))
    assert calls == [] and not (tmp_path / PROBE.stem).exists()  # nothing ran, no marker, no folder
    with pytest.raises(ValueError, match=r"'x' takes integers.*1\.5"):  # x = 0 in the parameters cell
        sweep.run_sweep(PROBE, {"x": [1, 1.5]}, out_dir=tmp_path, executor=lambda *a: calls.append(a),
                        progress=False)
    assert calls == []
    sweep.run_sweep(PROBE, {"x": [None]}, out_dir=tmp_path, executor=lambda *a: calls.append(a), progress=False)
    assert len(calls) == 1  # none ("the notebook's own choice") is allowed for any parameter


def test_item1_sweep_command_exits_nonzero_naming_the_allowed_names(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kdutils", "sweep", str(REPO / "notebooks" / "hinton_kd.ipynb"),
                          "-p", "taw", "5", "-p", "alpha", "0.9", "--profile", "smoke", "--no-group",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "'taw'" in out.stderr and "tau" in out.stderr and "0 ran" not in out.stdout
    assert not list(tmp_path.rglob("*.json"))  # no done marker


# ---------------------------------------------------------------------------------------------- item 2
@pytest.mark.parametrize("kw, needle", [
    (dict(n_train=-5), "n_train"), (dict(n_train=0), "n_train"), (dict(n_test=0), "n_test"),
    (dict(n_train=2.5), "n_train"), (dict(val_size=-1), "val_size"), (dict(fold=5), "fold must be in 0..4"),
    (dict(fold=-1), "fold"), (dict(k_folds=1), "k_folds"), (dict(dataset="mnsit"), "'mnsit'.*mnist"),
    (dict(split_seed=1.5), "split_seed"),
])
def test_item2_data_config_rejects_bad_fields(kw, needle):
    with pytest.raises(ValueError, match=needle):
        DataConfig(**kw)


@pytest.mark.parametrize("seed", [1.5, True, "1"])
def test_item2_seeds_must_be_integers(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        teacher_cfg(seed=seed)
    with pytest.raises(ValueError, match="epochs must be an integer"):
        TrainConfig(epochs=2.5)


def test_item2_valid_configs_and_chapter_datasets_still_build():
    DataConfig(dataset="set_mnist_jitter", n_train=10, fold=4, k_folds=5)  # registered by the core (data/pointsets)
    assert DataConfig(dataset="mnist", n_train=None, val_size=0).n_train is None


def test_item2_run_set_seed_must_be_an_integer_and_numbers_name_the_setting(monkeypatch):
    from chapter_fakes import install_fake_chapter

    from kdutils.__main__ import main

    calls = []
    install_fake_chapter(monkeypatch, "robust_cli", run_all=lambda profile="cpu", tau=None, seed=None,
                                  store=None, progress=True: calls.append((tau, seed)))
    with pytest.raises(SystemExit, match=r"--set seed 1\.5: seed must be an integer"):
        main(["run", "robust_cli", "--profile", "smoke", "--set", "seed", "1.5"])
    with pytest.raises(SystemExit, match=r"--set tau abc: tau must be a finite number"):
        main(["run", "robust_cli", "--profile", "smoke", "--set", "tau", "abc"])
    with pytest.raises(SystemExit, match=r"--set taw: unknown setting.*tau"):
        main(["run", "robust_cli", "--profile", "smoke", "--set", "taw", "4"])
    assert calls == []  # nothing ran with a bad value
    install_fake_chapter(monkeypatch, "robust_cli",
                         run_all=lambda profile="cpu", tau=None, seed=None: calls.append((tau, seed)) or [])
    assert main(["run", "robust_cli", "--profile", "smoke", "--set", "seed", "2", "--set", "tau", "4"]) == 0
    assert calls == [(4, 2)]


# ---------------------------------------------------------------------------------------------- item 3
def test_item3_torch_files_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "ckpt" / "w.pt"
    atomic_torch_save({"w": torch.ones(3)}, path)
    real_save = torch.save

    def dying_save(obj, fh, *a, **kw):
        fh.write(b"PK\x03\x04 half a zip")  # a write cut short by a kill
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"w": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))  # the old file, intact
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]  # no temporary file left


@needs_mnist
def test_item3_damaged_teacher_checkpoint_and_logit_cache_are_named_rebuilt_and_noted(private):
    store = private
    first = runner.run(distilled_cfg(4.0), store, progress=False)
    assert first["status"] == "ok" and "recovered" not in first
    ckpt = store.checkpoint_path(teacher_cfg())
    logit_files = sorted((Path(os.environ["KDUTILS_CACHE"]) / "logits").glob("*-train.pt"))
    assert len(logit_files) == 1
    good_logits = torch.load(logit_files[0], weights_only=True)

    logit_files[0].write_bytes(logit_files[0].read_bytes()[:100])  # truncated, as by a kill mid-write
    runner._LOGIT_CACHE.clear()
    with pytest.warns(RuntimeWarning, match=str(logit_files[0])):
        rec = runner.run(distilled_cfg(8.0), store, progress=False)
    assert rec["status"] == "ok" and any(str(logit_files[0]) in n for n in rec["recovered"])
    assert torch.equal(torch.load(logit_files[0], weights_only=True), good_logits)  # recomputed, same values

    ckpt.write_bytes(ckpt.read_bytes()[:200])
    runner._LOGIT_CACHE.clear()
    with pytest.warns(RuntimeWarning, match=str(ckpt)):
        rec = runner.run(distilled_cfg(2.0), store, progress=False)
    assert rec["status"] == "ok" and any(str(ckpt) in n and "retrain" in n for n in rec["recovered"])
    teacher_rec = store.get(teacher_cfg())
    assert any(str(ckpt) in n for n in teacher_rec["recovered"])  # the retrained teacher's record says so too
    torch.load(ckpt, weights_only=True)  # whole again


# ---------------------------------------------------------------------------------------------- item 4
def test_item4_damaged_record_is_named_skipped_and_rewritten(tmp_path):
    store = ResultStore(tmp_path)
    good, bad = teacher_cfg(), teacher_cfg(seed=1)
    store.put(good, {"status": "ok", "metrics": {"accuracy": 0.9}})
    store.put(bad, {"status": "ok", "metrics": {"accuracy": 0.8}})
    store.path(bad).write_text(store.path(bad).read_text()[:40])  # truncated
    with pytest.warns(RuntimeWarning, match=str(store.path(bad)) + r".*[Mm]ove it aside"):
        records = list(store.records())
    assert [r["key"] for r in records] == [good.key()]  # the rest of the store keeps working
    assert list(store.table("robust")["key"]) == [good.key()]
    assert list(store.damaged()) == [store.path(bad)]
    assert store.get(bad) is None  # treated as not yet run, so running it rewrites the file
    store.put(bad, {"status": "ok", "metrics": {"accuracy": 0.8}})
    assert store.get(bad)["metrics"]["accuracy"] == 0.8 and store.damaged() == {}


def test_item4_truncated_mnist_gz_names_the_file(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = DATA_ROOT / "MNIST" / "raw"
    if not src.is_dir():
        pytest.skip("needs the shared MNIST")
    shutil.copy(src / "t10k-labels-idx1-ubyte.gz", raw)
    blob = (src / "t10k-images-idx3-ubyte.gz").read_bytes()
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=str(raw / "t10k-images-idx3-ubyte.gz") + ".*damaged.*download"):
        registry.load_dataset("mnist", "test", root=tmp_path, download=False)


# ---------------------------------------------------------------------------------------------- item 5
def test_item5_wrong_data_root_is_left_untouched(tmp_path, monkeypatch):
    class Offline:
        @staticmethod
        def download_url(url, root, filename, md5=None):
            Path(root, filename).write_bytes(b"partial")  # a download that breaks off midway
            raise OSError("network unreachable")

    monkeypatch.setattr(data_mod, "_tv_download_utils", lambda: Offline)
    wrong = tmp_path / "wrong-root"
    with pytest.raises(FileNotFoundError, match="network unreachable"):
        registry.load_dataset("mnist", "train", root=wrong, download=True)
    assert not wrong.exists()  # no <root>/MNIST/raw created as a side effect


def test_item5_records_get_normal_permissions(tmp_path):
    store = ResultStore(tmp_path)
    store.put(teacher_cfg(), {"status": "ok"})
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(store.path(teacher_cfg()).stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    atomic_torch_save(torch.ones(1), tmp_path / "t.pt")
    assert stat.S_IMODE((tmp_path / "t.pt").stat().st_mode) == 0o666 & ~umask


def test_item5_error_file_is_removed_once_the_point_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))

    def fail(*a):
        raise RuntimeError("boom")

    sweep.run_sweep(PROBE, {"x": [1]}, out_dir=tmp_path, executor=fail, progress=False)
    errors = list((tmp_path / PROBE.stem).glob("*.error.txt"))
    assert len(errors) == 1
    report = sweep.run_sweep(PROBE, {"x": [1]}, out_dir=tmp_path, executor=lambda *a: None, progress=False)
    assert len(report.done) == 1 and not errors[0].exists()


def test_item5_done_markers_follow_the_results_store(tmp_path, monkeypatch):
    """A marker counts only for the results root it was written for (and, for notebooks with an experiment
    module, only while the point's records exist): a sweep into an empty store runs everything."""
    calls = []
    run = lambda nb, out, params, cwd: calls.append(params["x"])  # noqa: E731
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "store-a"))
    sweep.run_sweep(PROBE, {"x": [1, 2]}, out_dir=tmp_path, executor=run, progress=False)
    report = sweep.run_sweep(PROBE, {"x": [1, 2]}, out_dir=tmp_path, executor=run, progress=False)
    assert calls == [1, 2] and len(report.skipped) == 2
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "store-b"))  # another (empty) store
    report = sweep.run_sweep(PROBE, {"x": [1, 2]}, out_dir=tmp_path, executor=run, progress=False)
    assert calls == [1, 2, 1, 2] and len(report.done) == 2 and not report.skipped


@pytest.fixture
def chapter(monkeypatch):
    """A stand-in chapter `robust_chapter` whose points are one distilled run."""
    from chapter_fakes import install_fake_chapter

    install_fake_chapter(monkeypatch, "robust_chapter",
                         point_configs=lambda profile, tau=4.0: [distilled_cfg(tau, profile=profile)])
    return "robust_chapter"


def test_item5_done_marker_of_an_experiment_point_needs_its_records(tmp_path, monkeypatch, chapter):
    store = ResultStore(tmp_path / "results")
    monkeypatch.setenv("KDUTILS_RESULTS", str(store.root))
    marker = tmp_path / "m.json"
    sweep.atomic_write_json(marker, {"params": {}, "results": str(store.root.resolve())})
    params = {"tau": 4.0, "profile": "smoke"}
    assert not sweep.point_done(marker, params, chapter)  # empty store: not done, whatever the marker says
    store.put(distilled_cfg(4.0), {"status": "diverged"})  # a failed run is a finished run
    assert sweep.point_done(marker, params, chapter) and sweep.point_done(marker, params)
    assert not sweep.point_done(marker, {"tau": 8.0, "profile": "smoke"}, chapter)


def test_item5_one_invalid_point_does_not_stop_grouping_the_others(tmp_path, monkeypatch, chapter):
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    grouped = []
    monkeypatch.setattr(group_runner, "run_grouped", lambda cfgs, store, progress: grouped.append(cfgs))
    errors = []
    sweep.pre_run_grouped(chapter, [{"profile": "smoke", "tau": 4.0}, {"profile": "smoke", "tau": -1.0},
                                    {"profile": "smoke", "tau": 8.0}], progress=False, errors=errors)
    assert [c.tau for c in grouped[0]] == [4.0, 8.0]
    assert len(errors) == 1 and "tau" in errors[0] and "-1.0" in errors[0]


# ---------------------------------------------------------------------------------------------- item 6
def _tiny_resampled_archive(path: Path) -> None:
    write_tar_gz(path, {"modelnet40_normal_resampled/modelnet40_shape_names.txt": "bed\n",
                        "modelnet40_normal_resampled/bed/bed_0001.txt": "0,0,0,0,0,1\n1,1,1,0,0,1\n"})


def test_item6_data_root_that_refuses_writes_is_never_written(tmp_path, monkeypatch):
    # We run as root, and root passes both os.access and the permission bits, so a read-only shared mount
    # is simulated: the writability check says yes (as it would on an NFS root-squash mount) and every
    # write under the data root fails with PermissionError.
    root = tmp_path / "shared"
    (root / "ModelNet40").mkdir(parents=True)
    _tiny_resampled_archive(root / "ModelNet40" / "modelnet40_normal_resampled_tiny.tar.gz")
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(modelnet, "_dir_writable", lambda path: True)
    real_mkdtemp = modelnet.tempfile.mkdtemp

    def guarded_mkdtemp(*a, dir=None, **kw):
        if dir is not None and (Path(dir) == root or root in Path(dir).parents):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkdtemp(*a, dir=dir, **kw)

    monkeypatch.setattr(modelnet.tempfile, "mkdtemp", guarded_mkdtemp)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    with pytest.warns(RuntimeWarning, match="extracting into"):
        found = modelnet.find_modelnet40_resampled(root)
    assert found == tmp_path / "cache" / "ModelNet40" / "modelnet40_normal_resampled_tiny" / "modelnet40_normal_resampled"
    assert (found / "bed" / "bed_0001.txt").is_file()
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert modelnet.find_modelnet40_resampled(root) == found  # reused, no second extraction


# ---------------------------------------------------------------------------------------------- item 7
def test_item7_masked_teacher_class_counts_zero_log_zero():
    student = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0, float("-inf")]])
    loss = kd_loss(student, teacher, tau=1.0)
    log_s = F.log_softmax(student.detach(), dim=1)[0]
    expected = 0.5 * (math.log(0.5) - log_s[0]) + 0.5 * (math.log(0.5) - log_s[1])  # class 2 adds 0 log 0 = 0
    assert torch.isfinite(loss) and math.isclose(loss.item(), expected.item(), rel_tol=1e-6)
    loss.backward()
    p_s = log_s.exp()
    torch.testing.assert_close(student.grad[0], p_s - torch.tensor([0.5, 0.5, 0.0]))  # d KL / d z = p_s - p_t
    stacked = stacked_kd_objective(student.detach()[None], torch.tensor([0]), teacher,
                                   [dict(tau=1.0, alpha=1.0)])
    torch.testing.assert_close(stacked[0], loss.detach())  # the K-students objective agrees
    assert kd_loss(student, teacher, tau=1.0, direction="reverse").item() == math.inf  # P_t = 0 < P_s


@pytest.mark.parametrize("which, bad", [("student_logits", float("nan")), ("teacher_logits", float("nan")),
                                        ("teacher_logits", float("inf"))])
def test_item7_nan_logits_are_an_error_naming_tensor_and_position(which, bad):
    s, t = torch.zeros(2, 3), torch.zeros(2, 3)
    (s if which == "student_logits" else t)[1, 2] = bad
    with pytest.raises(ValueError, match=rf"{which} holds {bad} at \(row, class\) \(1, 2\)"):
        kd_loss(s, t, tau=2.0)


# ------------------------------------------------------------------------------- failure detection (a)
def _toy(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    return x, (x.flatten(1).sum(1) > 0).long()


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def _poisoned_teacher(x):
    """Teacher logits that are NaN for the third batch of 32 (rows 64..95, loaders without shuffling)."""
    t = torch.randn(x.shape[0], 2, generator=torch.Generator().manual_seed(1))
    t[64:96] = float("nan")
    return t


def test_fit_stops_at_the_first_non_finite_loss_with_the_weights_before_it():
    x, y = _toy()
    teacher = _poisoned_teacher(x)
    model = _mlp()
    res = fit(model, DeviceLoader(x, y, 32, shuffle=False), TrainConfig(epochs=3, lr=0.1), teacher_logits=teacher,
              tau=2.0, alpha=0.5, progress=False)
    assert res.status == "diverged" and res.epochs_run == 1
    assert "epoch 1, step 3" in res.message and "nan" in res.message
    two_steps = _mlp()  # the same run cut after its two healthy steps
    fit(two_steps, DeviceLoader(x[:64], y[:64], 32, shuffle=False), TrainConfig(epochs=1, lr=0.1),
        teacher_logits=teacher[:64], tau=2.0, alpha=0.5, progress=False)
    for p, q in zip(model.parameters(), two_steps.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_fit_students_stops_a_student_at_the_same_first_step_as_fit(mode):
    x, y = _toy()
    teacher = _poisoned_teacher(x)
    alone = _mlp()
    expected = fit(alone, DeviceLoader(x, y, 32, shuffle=False), TrainConfig(epochs=2, lr=0.1),
                   teacher_logits=teacher, tau=2.0, alpha=0.5, progress=False)
    models = [_mlp(), _mlp(1)]
    results = fit_students(models, DeviceLoader(x, y, 32, shuffle=False), TrainConfig(epochs=2, lr=0.1),
                           specs=[dict(tau=2.0, alpha=0.5), dict(alpha=0.0)], teacher_logits=teacher,
                           progress=False, mode=mode)
    assert [r.status for r in results] == ["diverged", "ok"]
    assert results[0].message == expected.message and results[0].epochs_run == expected.epochs_run
    assert all(math.isfinite(h["loss"]) for h in results[1].history) and len(results[1].history) == 2
    for p, q in zip(models[0].parameters(), alone.parameters()):  # weights from before the bad step
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_chance_rule_hand_values():
    balanced = torch.arange(10).repeat(10)  # 10 classes, 10 each
    assert runner.chance_status(0.145, balanced, 10)[0] and not runner.chance_status(0.146, balanced, 10)[0]
    binary = torch.tensor([0, 1] * 50)
    assert runner.chance_status(0.52, binary, 2)[0] and not runner.chance_status(0.70, binary, 2)[0]
    skewed = torch.tensor([0] * 90 + [1] * 10)  # a constant predictor scores 0.9
    at, why = runner.chance_status(0.9, skewed, 2)
    assert at and "0.9000" in why and not runner.chance_status(0.96, skewed, 2)[0]


@needs_mnist
def test_run_at_chance_level_is_a_finished_record_for_single_and_grouped_runs(private, monkeypatch):
    store = private
    assert "chance" in FINISHED
    real_evaluate = runner.evaluate

    def untrained_evaluate(cfg, model, teacher, splits, device, notes=None):
        metrics = real_evaluate(cfg, model, teacher, splits, device, notes)
        return {**metrics, "accuracy": 0.1}  # as if the net had learned nothing

    monkeypatch.setattr(runner, "evaluate", untrained_evaluate)
    single = runner.run(teacher_cfg(), store, progress=False)
    grouped = group_runner.run_grouped([teacher_cfg(seed=1), teacher_cfg(seed=2)], store, progress=False)
    for rec in [single, *grouped]:
        assert rec["status"] == "chance" and "chance level" in rec["message"] and rec["metrics"]["errors"] >= 0
    assert store.get(teacher_cfg()) == single  # kept and loaded, not retrained
    assert set(store.table("robust")["status"]) == {"chance"}


# ------------------------------------------------------------------------------------ load-only mode (b)
def test_load_only_mode_raises_missing_run_error_instead_of_training(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "results")
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDUTILS_LOAD_ONLY", "1")
    monkeypatch.setattr(runner, "fit", lambda *a, **k: pytest.fail("load-only mode trained a run"))
    monkeypatch.setattr(group_runner, "fit_students", lambda *a, **k: pytest.fail("load-only mode trained"))
    cfg = distilled_cfg(4.0)
    for call in (lambda: runner.run(cfg, store, progress=False),
                 lambda: runner.load_model(cfg.teacher, store, progress=False),
                 lambda: group_runner.run_grouped([cfg, distilled_cfg(8.0)], store, progress=False)):
        with pytest.raises(runner.MissingRunError) as err:
            call()
        message = str(err.value)
        assert "'robust'" in message and "python -m kdutils run robust --profile smoke" in message
        assert "KDUTILS_LOAD_ONLY" in message and ("'distilled'" in message or "'teacher'" in message)
        assert cfg.key() in message or cfg.teacher.key() in message
    store.put(cfg, {"status": "ok", "metrics": {"accuracy": 0.9}})
    assert runner.run(cfg, store)["metrics"]["accuracy"] == 0.9  # recorded runs still load


def test_book_build_runs_in_load_only_mode():
    lines = (REPO / "scripts" / "book.sh").read_text().splitlines()
    build = [line for line in lines if "jupyter-book build" in line and not line.lstrip().startswith("#")]
    assert build and all("KDUTILS_LOAD_ONLY=1" in line for line in build)


def test_item3_damaged_point_set_cache_is_named_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path))
    built = []

    def build():
        built.append(1)
        return data_mod.ArrayDataset(torch.ones(2, 3, 2), torch.tensor([0, 1]), ["a", "b"], "toy")

    first = pointsets._cached("toy", {"k": 1}, build, True)
    files = list((tmp_path / "pointsets").glob("toy-*.pt"))
    assert len(files) == 1 and len(built) == 1
    files[0].write_bytes(files[0].read_bytes()[:50])
    with pytest.warns(RuntimeWarning, match=str(files[0]) + ".*rebuilding"):
        again = pointsets._cached("toy", {"k": 1}, build, True)
    assert len(built) == 2 and torch.equal(again.x, first.x)
    assert torch.equal(pointsets._cached("toy", {"k": 1}, build, True).y, first.y) and len(built) == 2
