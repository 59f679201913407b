"""Train the Hinton chapter's `paper` profile in parts, so two single-thread processes never train the same run.

    python scripts/hinton_paper_runs.py teacher     # teacher selection, then the final teacher
    (or, over two processes: teacher-select-low teacher-final ... | teacher-select-high ...)
    python scripts/hinton_paper_runs.py alone       # every student that needs no teacher (2x800, 2x30, 2x300)
    python scripts/hinton_paper_runs.py kd-main     # waits for the teacher: 2x800 at T=20, then no3 and only78
    (kd-main is kd-finals, every T=20 seed, then kd-transfer, the no3 and only78 transfer sets)
    python scripts/hinton_paper_runs.py kd-sweep    # waits for the teacher: 2x30 and 2x300 at every T
    python scripts/hinton_paper_runs.py kd-sweep-back   # the same runs from the last: a second process beside it

Finished runs are skipped (records are keyed by config), so a killed part resumes where it stopped; with
KDUTILS_SNAPSHOT_EVERY=2 a run killed part-way resumes from its last snapshot (in $KDUTILS_CACHE). Parts that
need the teacher wait for its record instead of training it (only the teacher parts train it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdutils.chapters.hinton import paper_plan as P  # noqa: E402
from kdutils.chapters.hinton import plan as H  # noqa: E402
from kdutils.store.store import ResultStore  # noqa: E402
from kdutils.training.group_runner import run_grouped  # noqa: E402

PROFILE = "paper"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] {msg}", flush=True)


def train(cfgs, store: ResultStore, what: str) -> None:
    todo = [c for c in cfgs if store.get(c) is None]
    log(f"{what}: {len(cfgs) - len(todo)} of {len(cfgs)} recorded, training {len(todo)}")
    for cfg in todo:
        started = time.time()
        rec = run_grouped([cfg], store, max_group=1)[0]
        log(f"  {cfg.role} seed {cfg.seed} lr {cfg.train.lr} epochs {cfg.train.epochs}: {rec['status']}, "
            f"test errors {rec['metrics'].get('errors')}, val acc {rec['metrics'].get('val_accuracy')}, "
            f"{time.time() - started:.0f} s")


def select(cfgs, arm: str, store: ResultStore) -> float:
    train(cfgs, store, f"selection {arm}")
    lr = P.chosen_lr(cfgs, arm, store)
    log(f"selection {arm}: lr {lr}")
    return lr


def wait_teacher(store: ResultStore):
    while True:
        teacher = P.teacher_run(PROFILE, store)
        if teacher is not None and store.get(teacher) is not None and store.checkpoint_path(teacher).exists():
            return teacher
        log("waiting for the teacher's record and checkpoint (the `teacher` part trains it)")
        time.sleep(120)


def part_teacher_select_low(store: ResultStore) -> None:
    train(H.teacher_selection(PROFILE)[:-1], store, "teacher selection, all rates but the highest")


def part_teacher_select_high(store: ResultStore) -> None:
    train(H.teacher_selection(PROFILE)[-1:], store, "teacher selection, the highest rate")


def part_teacher_final(store: ResultStore) -> None:
    cfgs = H.teacher_selection(PROFILE)
    while P.chosen_lr(cfgs, "teacher", store) is None:
        log("waiting for the other process's teacher selection run")
        time.sleep(60)
    lr = select(cfgs, "teacher", store)
    train([H.teacher_config(PROFILE, lr)], store, "final teacher")


def part_teacher(store: ResultStore) -> None:
    part_teacher_select_low(store)
    part_teacher_select_high(store)
    part_teacher_final(store)


def part_alone(store: ResultStore) -> None:
    r = H.recipe(PROFILE)
    lr = select(P.main_selection(PROFILE, None, None), "alone", store)
    train([H.student_config(PROFILE, lr, s) for s in r.seeds], store, "2x800 alone finals")
    rank = P.rank_check_configs(PROFILE)
    lr30 = select(rank["selection"], P.sweep_arm("2x30", None), store)
    train(rank["full"], store, "rank check: 2x30 alone at full length")
    train([P.width_config(PROFILE, "2x30", None, None, lr30, s) for s in r.sweep_seeds], store, "2x30 alone finals")
    lr300 = select(P.sweep_selection(PROFILE, "2x300", None, None), P.sweep_arm("2x300", None), store)
    train([P.width_config(PROFILE, "2x300", None, None, lr300, s) for s in r.sweep_seeds], store,
          "2x300 alone finals")


def _kd_main_lr(store: ResultStore):
    teacher = wait_teacher(store)
    return teacher, select(P.main_selection(PROFILE, teacher, H.VERDICT_TAU), H.arm_name(H.VERDICT_TAU), store)


def part_kd_finals(store: ResultStore) -> None:
    """The 2x800 T=20 finals, every seed (the main claim needs all ten before it has a verdict)."""
    r = H.recipe(PROFILE)
    teacher, lr = _kd_main_lr(store)
    train([H.distilled_config(PROFILE, teacher, H.VERDICT_TAU, lr, H.DEFAULT_ALPHA, s) for s in r.seeds], store,
          "2x800 T=20 finals")


def part_kd_transfer(store: ResultStore) -> None:
    """The omitted-3 and only-7s-and-8s transfer sets at the T=20 rate, seeds 0-4 of each, then 5-9."""
    r = H.recipe(PROFILE)
    teacher, lr = _kd_main_lr(store)
    for seeds in (r.seeds[:5], r.seeds[5:]):
        for name in P.TRANSFER_SETS:
            train([P.transfer_config(PROFILE, teacher, name, lr, s) for s in seeds], store, f"{name}, seeds {list(seeds)}")


def part_kd_main(store: ResultStore) -> None:
    part_kd_finals(store)
    part_kd_transfer(store)


def part_kd_sweep(store: ResultStore, backwards: bool = False) -> None:
    """The 2x30 and 2x300 temperature sweeps (2x30, the sharper claim, first). `backwards` walks the same runs from
    the last one: a second process started on `kd-sweep-back` meets the first in the middle (the per-run locks skip
    what the other has trained) instead of waiting behind it."""
    r = H.recipe(PROFILE)
    teacher = wait_teacher(store)
    batches = []
    for width in ("2x30", "2x300"):
        lrs = {tau: select(P.sweep_selection(PROFILE, width, teacher, tau), P.sweep_arm(width, tau), store)
               for tau in P.SWEEP_TAUS}
        for seeds in (r.sweep_seeds[:3], r.sweep_seeds[3:]):
            batches.append(([P.width_config(PROFILE, width, teacher, tau, lrs[tau], s)
                             for tau in P.SWEEP_TAUS for s in seeds], f"{width} temperature finals, seeds {list(seeds)}"))
    for cfgs, what in (reversed(batches) if backwards else batches):
        train(cfgs[::-1] if backwards else cfgs, store, what + (", from the last" if backwards else ""))


PARTS = {"teacher": part_teacher, "teacher-select-low": part_teacher_select_low,
         "teacher-select-high": part_teacher_select_high, "teacher-final": part_teacher_final, "alone": part_alone, "kd-main": part_kd_main,
         "kd-finals": part_kd_finals, "kd-transfer": part_kd_transfer, "kd-sweep": part_kd_sweep,
         "kd-sweep-back": lambda store: part_kd_sweep(store, backwards=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="+", choices=PARTS, help="parts to run, in order")
    args = ap.parse_args(argv)
    store = ResultStore()
    log(f"results in {store.root if hasattr(store, 'root') else 'the default store'}")
    for part in args.parts:
        log(f"part {part}")
        PARTS[part](store)
        log(f"part {part} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
