"""The GPU script (`python -m kdutils gpu`) on the CPU at the smoke profile: the same code a GPU runs.

What is checked: the trimming arithmetic against hand-computed seeds, the seed cap (it cuts seeds, never a
config), the deadline (a BaseException no `except Exception` can swallow), packing and unpacking (parts,
refusal to overwrite a differing record), and the command itself in a subprocess that cannot import
pandas, scipy or papermill (as on the GPU machine): a real run of one chapter with checks, benchmarks and
packing, a dry run that trains nothing, and a budget too small for anything.
"""
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import needs_mnist
from kdutils.config import DataConfig
from kdutils.gpu import pack as packing
from kdutils.gpu.cli import DeadlineExceeded, deadline
from kdutils.gpu.workload import ChapterWork, Timing, Work, allocate, estimate
from kdutils.paths import REPO_ROOT
from kdutils.store.profiles import capped, seed_cap

DATA = DataConfig(dataset="mnist")


def chapter(name: str, seeds: int, fixed: float, per_seed: float, grouped: bool = False) -> ChapterWork:
    return ChapterWork(name, seeds, 2, (Work(f"{name} net", "mlp", DATA, 128, fixed, per_seed, grouped=grouped),))


ONE_SECOND = {"a net": Timing(epoch_s=1.0, run_s=0.0), "b net": Timing(epoch_s=1.0, run_s=0.0)}


def test_allocation_trims_seeds_to_the_budget_and_leaves_later_chapters_their_share():
    a = chapter("a", 8, fixed=10, per_seed=5)  # 10 + 5n seconds: 20 at 2 seeds, 50 at 8
    b = chapter("b", 4, fixed=20, per_seed=10)  # 40 at 2 seeds, 60 at 4
    assert estimate(a, ONE_SECOND, 3) == 25
    alone = allocate(a, ONE_SECOND, 40)
    assert (alone.seeds, alone.trimmed, alone.skipped) == (6, True, False)  # 10 + 5 * 6 = 40
    assert allocate(a, ONE_SECOND, 1000).seeds == 8 and not allocate(a, ONE_SECOND, 1000).trimmed
    # 100 s for both: minimums 20 + 40, the 40 s spare split 30 : 20 over their extra seeds -> a gets 20 + 24
    first = allocate(a, ONE_SECOND, 100, later=[(b, ONE_SECOND)])
    assert first.allowance_s == pytest.approx(44.0) and first.seeds == 6
    second = allocate(b, ONE_SECOND, 100 - first.estimate_s)
    assert second.seeds == 4 and not second.trimmed
    # a chapter whose fewest seeds do not fit what is left is skipped, and said so
    skipped = allocate(a, ONE_SECOND, 15)
    assert skipped.skipped and skipped.trimmed and "skipped" in skipped.describe()
    # students trained together are charged at the group share
    g = chapter("a", 8, fixed=10, per_seed=5, grouped=True)
    assert estimate(g, ONE_SECOND, 2, group_share=0.5) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="group_share"):
        estimate(g, ONE_SECOND, 2, group_share=0.0)


def test_later_chapters_are_planned_with_what_the_earlier_ones_really_took():
    from kdutils.gpu.cli import correction, scaled

    assert correction([]) == 1.0
    assert correction([2.0, 2.0 * 1.0]) == pytest.approx(2.0) and correction([1.0, 4.0]) == pytest.approx(2.0)
    assert correction([100.0]) == 4.0 and correction([0.01]) == 0.5  # bounded: one odd chapter is not the rule
    twice = scaled(ONE_SECOND, 2.0)
    assert estimate(chapter("a", 8, fixed=10, per_seed=5), twice, 2) == 40.0


def test_the_seed_cap_cuts_seeds_and_nothing_else():
    from kdutils.chapters.hinton import plan as hinton
    from kdutils.chapters.tgeo import plan as tgeo

    full = hinton.recipe("gpu")
    with seed_cap(2):
        cut = hinton.recipe("gpu")
        assert cut.seeds == (0, 1) and cut.sweep_seeds == (0, 1)
        assert replace(cut, seeds=full.seeds, sweep_seeds=full.sweep_seeds) == full
        assert tgeo.recipe("gpu").seeds == (0, 1)
        # the runs themselves are the uncapped runs: same config, same record key
        teacher = tgeo.teacher_config("gpu", 0.1)
        assert tgeo.arm_config("gpu", teacher, "alone", 0.1, 1).key() == \
            tgeo.arm_config("gpu", tgeo.teacher_config("gpu", 0.1), "alone", 0.1, 1).key()
    key_uncapped = tgeo.arm_config("gpu", tgeo.teacher_config("gpu", 0.1), "alone", 0.1, 1).key()
    assert key_uncapped == tgeo.arm_config("gpu", teacher, "alone", 0.1, 1).key()
    assert capped((0, 1, 2)) == (0, 1, 2)
    with pytest.raises(ValueError, match="seed cap must be a positive integer"):
        with seed_cap(0):
            pass


def test_every_chapter_has_a_gpu_recipe_at_full_data_with_more_seeds_than_cpu():
    from kdutils.chapters.does_kd_work import plan as does_kd_work
    from kdutils.chapters.does_kd_work import workload as does_kd_work_workload
    from kdutils.chapters.hinton import plan as hinton
    from kdutils.chapters.invariance import plan as invariance
    from kdutils.chapters.invariance import recipes as invariance_recipes
    from kdutils.chapters.ls_kd import plan as ls_kd_plan
    from kdutils.chapters.ls_kd import recipes as ls_kd
    from kdutils.chapters.tgeo import plan as tgeo

    assert hinton.recipe("gpu").n_train is None and len(hinton.recipe("gpu").seeds) > len(hinton.recipe("cpu").seeds)
    for mod in (tgeo, ls_kd):
        r, c = mod.recipe("gpu"), mod.recipe("cpu")
        assert r.n_train is None and len(r.seeds) > len(c.seeds)
    assert tgeo.recipe("gpu").teacher == "resnet20" and ls_kd.recipe("gpu").teacher_model == "resnet20"
    d = does_kd_work.recipe("gpu")
    assert d.n_train is None and d.teacher_model == "preresnet20"
    assert len(d.seeds) > len(does_kd_work.recipe("cpu").seeds)
    assert len(invariance_recipes.FOLDS["gpu"]) > len(invariance_recipes.FOLDS["cpu"])
    assert all(invariance_recipes.recipe(p, "gpu").n_train is None for p in invariance_recipes.PAIRS)
    for mod in (hinton, tgeo, ls_kd_plan, invariance, does_kd_work_workload):
        work = mod.gpu_work("gpu")
        assert work.seeds >= work.min_seeds >= 2 and work.works
    # every run of the gpu profile can be configured (a recipe error must not first show on a lent GPU)
    h_teacher = hinton.teacher_config("gpu", 0.1)
    assert len(hinton.teacher_selection("gpu")) == 4 and len(hinton.arm_selection("gpu", h_teacher, 20.0)) == 6
    t_teacher = tgeo.teacher_config("gpu", 0.1)
    assert t_teacher.model == "resnet20" and t_teacher.data.n_train is None
    assert len(tgeo.all_arm_configs("gpu", t_teacher, {a: 0.03 for a in tgeo.ARMS})) == 8 * len(tgeo.ARMS)
    assert len(tgeo.motivation_configs("gpu", t_teacher, 0.03)) == 1 + len(tgeo.MOTIVATION_ALPHAS)
    ls_teacher = ls_kd.teacher_config("gpu", 0.1, 0.1)
    assert ls_teacher.train.augment == "crop2+flip" and len(ls_kd.student_selection("gpu", ls_teacher, "mlp", 1.0)) == 4
    inv = invariance.configs("gpu")
    assert {c.data.fold for c in inv} == {0, 1, 2, 3} and {c.profile for c in inv} == {"gpu"}
    with seed_cap(2):
        assert {c.data.fold for c in invariance.configs("gpu")} == {0, 1}
    specs = does_kd_work.grid("gpu")  # 4 seeds, 6 for the claims 3 and 5
    assert {s.seed for s in specs} == set(range(6)) and {s.student_model for s in specs} == {"preresnet20"}
    with seed_cap(2):
        assert {s.seed for s in does_kd_work.grid("gpu")} == {0, 1}


def test_the_engine_check_passes_the_engines_and_fails_one_that_mixes_up_the_students(monkeypatch, one_thread):
    import torch

    from kdutils.gpu import checks

    good = checks.check_engines(torch.device("cpu"))
    assert [c.passed for c in good] == [True, True, True]
    assert good[1].values["worst"] == 0.0  # the loop engine runs exactly fit's operations
    assert good[0].values["worst"] < checks.TOLERANCE["fp32"] < checks.SEPARATION * good[0].values["between_students"]
    real = checks.fit_students

    def swapped(models, loader, cfg, *, specs, **kw):  # the students' temperatures and weights reversed
        return real(models, loader, cfg, specs=list(reversed(specs)), **kw)

    monkeypatch.setattr(checks, "fit_students", swapped)
    assert [c.passed for c in checks.check_engines(torch.device("cpu"))] == [False, False, False]


def test_flops_of_a_training_step_are_counted_by_hand():
    from kdutils.gpu.benchmarks import achieved, train_step_flops

    m1, m2, m3 = 784 * 800, 800 * 800, 800 * 10  # mlp_800x2's multiply-adds per sample, layer by layer
    assert train_step_flops("mlp_800x2", backward=False) == 2 * (m1 + m2 + m3)
    # backward: every weight gradient, and the input gradient of every layer but the first
    assert train_step_flops("mlp_800x2") == 2 * (m1 + m2 + m3) + 2 * (m1 + m2 + m3) + 2 * (m2 + m3)
    res = {"task": "mlp", "rows": [{"name": "reference (DataLoader ...)", "samples_per_s": 1e6},
                                   {"name": "fast path", "samples_per_s": 1e6}]}
    got = achieved(res, 100.0, __import__("torch").device("cpu"))["rows"]
    teacher = train_step_flops("mlp_1200x2", backward=False)
    assert got["fast path"]["tflops"] == pytest.approx(train_step_flops("mlp_800x2") / 1e6)
    assert got["reference (DataLoader ...)"]["tflops"] == pytest.approx((train_step_flops("mlp_800x2") + teacher) / 1e6)
    assert got["fast path"]["of_measured_bf16_peak"] == pytest.approx(got["fast path"]["tflops"] / 100.0)


def test_a_failing_benchmark_item_is_logged_and_the_others_run(monkeypatch, one_thread):
    import torch

    from kdutils.bench import run as bench
    from kdutils.gpu.benchmarks import run_benchmarks

    real = bench.bench_task

    def no_compiler(*args, **kw):
        if kw["k"] == 3:
            raise RuntimeError("no working C compiler")
        return real(*args, **kw)

    monkeypatch.setattr(bench, "bench_task", no_compiler)
    lines = []
    out = run_benchmarks(torch.device("cpu"), tasks=("mlp",), ks=(2, 3), steps=2, warmup=1, batch_size=16,
                         workers=0, data="random", compile_task=None, record=False, log=lines.append)
    assert [r["k"] for r in out] == [2] and out[0]["achieved"]["student_train_flops_per_sample"] > 0
    assert any("K=3: failed (RuntimeError: no working C compiler)" in line for line in lines)


def test_the_deadline_cuts_a_block_and_no_except_exception_swallows_it():
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        with deadline(0.2):
            try:
                while time.monotonic() - start < 5:
                    sum(range(1000))
            except Exception:  # an engine's fall-back must not eat the deadline
                pytest.fail("the deadline was caught as an Exception")
    assert time.monotonic() - start < 2
    with deadline(5):  # a block that ends in time is left alone, and the timer is cleared
        pass
    time.sleep(0.01)


def test_pack_splits_into_parts_and_unpack_refuses_a_differing_record(tmp_path):
    root = tmp_path / "results"
    before = packing.snapshot(root)
    for i in range(3):
        (root / "exp").mkdir(parents=True, exist_ok=True)
        (root / "exp" / f"k{i}.json").write_text(json.dumps({"i": i, "pad": os.urandom(3000).hex()}))
    files = packing.changed_since(root, before)
    assert files == ["exp/k0.json", "exp/k1.json", "exp/k2.json"]
    parts = packing.pack(root, files, tmp_path / "out", max_part_bytes=4000)
    assert len(parts) > 1 and all(p.stat().st_size <= 4000 for p in parts)
    with pytest.raises(ValueError, match="more than 2 parts"):
        packing.pack(root, files, tmp_path / "out2", max_part_bytes=4000, max_parts=2)
    target = tmp_path / "other"
    assert packing.unpack(reversed(parts), target)["written"] == files  # parts are joined by number
    assert packing.unpack(parts, target) == {"written": [], "identical": files, "replaced": []}
    (target / "exp" / "k1.json").write_text("{}")
    (target / "exp" / "k0.json").unlink()
    with pytest.raises(ValueError, match="refusing to overwrite 1 differing record.*k1.json.*nothing was written"):
        packing.unpack(parts, target)
    assert not (target / "exp" / "k0.json").exists()
    # a benchmark figure is a measurement: a newer one replaces it (and says so); a record never is
    (root / "bench").mkdir()
    (root / "bench" / "mlp-cuda.json").write_text('{"ratio": 2}')
    (target / "bench").mkdir()
    (target / "bench" / "mlp-cuda.json").write_text('{"ratio": 1}')
    (target / "exp" / "k1.json").write_bytes((root / "exp" / "k1.json").read_bytes())
    both = packing.pack(root, files + ["bench/mlp-cuda.json"], tmp_path / "out3")
    done = packing.unpack(both, target)
    assert done["replaced"] == ["bench/mlp-cuda.json"] and done["written"] == ["exp/k0.json"]
    assert (target / "bench" / "mlp-cuda.json").read_text() == '{"ratio": 2}'
    evil = tmp_path / "evil" / packing.ARCHIVE
    evil.parent.mkdir()
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(root / "exp" / "k0.json", arcname="../escape.json")
    with pytest.raises(ValueError, match="only relative paths inside the results folder"):
        packing.unpack([evil], target)


# ----------------------------------------------------------------------------- the command, as the GPU runs it
BLOCK = "import sys\nfor n in ('pandas', 'scipy', 'papermill', 'matplotlib'): sys.modules[n] = None\n"


def gpu_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m kdutils gpu ...` from the checkout with PYTHONPATH=. only, without pandas/scipy/papermill."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KDUTILS_RESULTS": str(tmp_path / "results"),
           "KDUTILS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "KDUTILS_PROGRESS": "0"}
    code = BLOCK + "from kdutils.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, "gpu", "--device", "cpu", "--profile", "smoke",
                           "--out", str(tmp_path / "out"), *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@needs_mnist
def test_the_gpu_command_runs_a_chapter_packs_it_and_the_records_unpack(tmp_path):
    proc = gpu_command(tmp_path, "--chapters", "hinton", "--bench-k", "2", "--bench-steps", "2", "--budget-s", "600")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu-report.json").read_text())
    assert report["stages"]["checks"]["passed"] and report["stages"]["bench"]["status"] == "ok"
    (hinton,) = report["chapters"]
    assert hinton["status"] == "ok" and hinton["seeds"] == 2 and hinton["estimate_s"] > 0
    records = sorted(p.relative_to(tmp_path / "results").as_posix()
                     for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert any(r.startswith("hinton_mnist/") for r in records) and "bench/mlp-k2-cpu.json" in records
    assert any(r.startswith("gpu/") for r in records)  # the run's own report
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu-report.json", "gpu.log",
                                                                     packing.ARCHIVE]
    assert "== kdutils gpu" in proc.stdout and "hinton" in proc.stdout.splitlines()[-2]
    # unpacking into an empty results folder gives exactly the records of the run, byte for byte
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    fresh = tmp_path / "fresh"
    done = subprocess.run([sys.executable, "-m", "kdutils", "gpu", "unpack", str(tmp_path / "out" / packing.ARCHIVE),
                           "--results", str(fresh)], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and f"{len(records)} new file(s)" in done.stdout
    for rel in records:
        assert (fresh / rel).read_bytes() == (tmp_path / "results" / rel).read_bytes()


@needs_mnist
def test_a_dry_run_prints_the_plan_and_trains_nothing_and_a_tiny_budget_skips(tmp_path):
    proc = gpu_command(tmp_path, "--chapters", "hinton", "--dry-run", "--budget-s", "600")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "plan  checks ~60 s, benchmarks up to 90 s" in proc.stdout
    plan = [line for line in proc.stdout.splitlines() if line.startswith("plan  hinton:")]
    assert plan and "2 seeds" in plan[0] and " s (all seeds ~" in plan[0]
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.json"))
    report = json.loads((tmp_path / "out" / "gpu-report.json").read_text())
    assert report["chapters"][0]["status"] == "planned" and report["chapters"][0]["estimates_s"]

    proc = gpu_command(tmp_path, "--chapters", "hinton", "--skip-checks", "--skip-bench", "--budget-s", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu-report.json").read_text())
    assert report["chapters"][0]["status"] == "skipped: budget"
    assert not list((tmp_path / "results").glob("hinton_mnist/*.json"))


def test_bad_arguments_fail_clearly(tmp_path, capsys):
    from kdutils.gpu.cli import main, parse_args

    with pytest.raises(SystemExit):
        parse_args(["--budget-s", "0"])
    assert "--budget-s must be positive, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--chapters", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["unpack", str(tmp_path / "missing.tar.gz")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("chapter", ["hinton", "ls_kd", "invariance", "tgeo", "does_kd_work"])
def test_every_chapter_package_imports_without_pandas_scipy_papermill_or_matplotlib(chapter):
    """The GPU machine has torch and numpy only: `python -m kdutils gpu` imports every chapter's package, so none
    may import a report-only library at import time (the invariance package once did, through its collapse
    claim's pandas import)."""
    code = BLOCK + f"import kdutils.chapters.{chapter}\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
