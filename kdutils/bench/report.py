"""The benchmarks page's reading of `results/bench/*.json`: tables, the speed-up figure and the prose numbers.

Why a module: the page's sentences ("on one CPU thread the fast path is 1.6x the reference") must come from
the records, not be typed, and the notebook stays thin.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from kdutils.paths import results_dir
from kdutils.report import present

RATIO_NAMES = {"fast_vs_reference": "fast path / reference",
               "fast_vs_reference_whole_run_with_cache": "fast path (teacher cache charged) / reference",
               "together_vs_sequential": "{k} together / {k} in sequence",
               "loop_together_vs_sequential": "{k} together, loop engine / {k} in sequence"}


def ratio_name(key: str, k: int) -> str:
    """A ratio's label, with the record's number of students K filled in."""
    return RATIO_NAMES.get(key, key.replace("_", " ")).format(k=k)
TASK_NAMES = {"mlp": "MLP 1200x2 → MLP 800x2", "resnet_mlp": "ResNet-20 → MLP 256x4"}


def load_records(root: Path | None = None) -> list[dict[str, Any]]:
    """Every benchmark record, sorted by file name."""
    folder = (root or results_dir()) / "bench"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def ratios_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (task, ratio): measured speed-up, the GPU target where one is set, device and commit."""
    rows = []
    for r in records:
        for key, value in r["ratios"].items():
            rows.append({"task": TASK_NAMES.get(r["task"], r["task"]), "ratio": ratio_name(key, r["k"]),
                         "measured": round(float(value), 2), "target": r["gpu_targets"].get(key),
                         "device": r["provenance"]["device"], "commit": r["provenance"]["commit"][:10]})
    return pd.DataFrame(rows, columns=["task", "ratio", "measured", "target", "device", "commit"])


def throughput_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (task, loop): samples per second."""
    rows = [{"task": TASK_NAMES.get(r["task"], r["task"]), "loop": row["name"],
             "samples/s": round(row["samples_per_s"]), "device": r["provenance"]["device"]}
            for r in records for row in r["rows"]]
    return pd.DataFrame(rows, columns=["task", "loop", "samples/s", "device"])


def prose(records: list[dict[str, Any]]) -> str:
    """The page's reading of the records, every number taken from them."""
    if not records:
        return "No benchmark is recorded yet: run `python -m kdutils bench --task all --record`."
    devices = sorted({present.short_device(r["provenance"]["device"]) for r in records})
    parts = []
    for r in records:
        ratios = r["ratios"]
        parts.append(f"for {TASK_NAMES.get(r['task'], r['task'])} the fast path runs "
                     f"{ratios['fast_vs_reference']:.1f}× the reference's speed "
                     f"({ratios.get('fast_vs_reference_whole_run_with_cache', float('nan')):.1f}× over a whole run "
                     f"once the teacher cache is charged to it), and {r['k']} students trained together run at "
                     f"{ratios['together_vs_sequential']:.2f}× the speed of {r['k']} in sequence")
    return (f"**Reading the figures.** These records were measured on {', '.join(devices)}, one process per task: "
            + "; ".join(parts) + ". On a CPU the step is compute-bound, so the fast path gains most where the "
            "teacher's forward pass dominates a step (the ResNet teacher). Interleaving students on shared batches "
            "(the loop engine) pays there only when they share a live teacher's forward pass; with cached teacher "
            "logits `fit_students` trains them in sequence, so grouping costs nothing (the loop engine's ratio, "
            "where recorded, shows what it would cost). The GPU targets can only be checked on a GPU.")


def speedup_figure(records: list[dict[str, Any]]):
    """Measured speed-ups per task next to their GPU targets, one panel per ratio (one idea per panel)."""
    ratios = ratios_frame(records)
    keys = [k for k in ("fast path / reference", "4 together / 4 in sequence") if k in set(ratios.ratio)]
    fig, axes = present.page_figure(len(keys), panel_height=2.8)
    for ax, key in zip(axes, keys):
        sub = ratios[ratios.ratio == key].assign(task=lambda d: d.task.str.replace(" → ", "\n→ "))
        ax.bar(sub.task, sub.measured, color="C0", label="measured (this device)")
        ax.scatter(sub.task, sub.target, color="k", marker="_", s=900, linewidths=2, label="GPU target")
        ax.axhline(1, color="grey", lw=0.8)
        ax.set_title(key)
        ax.set_ylabel("speed-up (×)")
        ax.tick_params(axis="x", labelsize=9)
    present.shared_legend(fig, axes)
    return fig
