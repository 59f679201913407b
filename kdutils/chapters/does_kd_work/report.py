"""The report of "Does knowledge distillation really work?": tables and the prose that carries numbers,
read from the records only (nothing here trains). The claims and their verdict rules are in `claims`, the figures
in `figures`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.chapters.does_kd_work.tables import DATASET_NAMES, POLICY_NAMES, _ms, student_table, teacher_table
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_YET_RUN, Verdict

# ------------------------------------------------------------------------------------------------- tables
METRICS = {"teacher_accuracy": "teacher acc (%)", "accuracy": "test acc (%)", "agreement": "test agreement (%)",
           "kl": "test KL(t‖s)", "train_agreement": "train agreement (%)", "train_kl": "train KL(t‖s)",
           "train_distill_loss": "train τ²KL at τ", "nll": "NLL", "ece": "ECE"}
GROUPS = {"policy": "policy", "distill_data": "distillation data", "n_distill": "distillation images", "r": "r",
          "k": "teachers"}


def claim_table(df: pd.DataFrame, claim: int, by: tuple[str, ...], metrics: tuple[str, ...] = (
        "accuracy", "agreement", "kl", "train_agreement", "train_kl"),
        caption: str = "") -> present.Table | None:
    """Mean ± std over seeds of one claim's arms: percentages with one decimal, KL/NLL/ECE with three."""
    if df.empty or df[df.claim == claim].empty:
        return None
    d = df[df.claim == claim]
    rows = []
    for key, g in d.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {}
        for col, v in zip(by, key):
            if col == "policy":
                v = POLICY_NAMES.get(v, v)
            elif col == "r":
                v = "1 (random init)" if v == 1.0 else f"{v:g}"
            elif col == "n_distill":
                v = f"{int(v):,}"
            row[GROUPS.get(col, col)] = v
        for m in metrics:
            if m in g:
                pct_ = "(%)" in METRICS[m]
                row[METRICS[m]] = _ms(pd.to_numeric(g[m], errors="coerce") * (100 if pct_ else 1), 1 if pct_ else 3)
        row["seeds"] = len(g)
        bad = g["status"][g["status"] != "ok"]
        row["failed"] = ", ".join(f"{n} {k}" for k, n in bad.value_counts().items()) or "none"
        rows.append(row)
    return present.results_table(pd.DataFrame(rows), caption=caption, device=None, status=None)


def ensemble_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The poster's table (teacher size, teacher acc, student acc, agreement, KL), ours as mean ± std (%)."""
    df = student_table(profile, store=store) if df is None else df
    if df.empty or df[df.claim == 2].empty:
        return pd.DataFrame()
    d = df[df.claim == 2]
    rows = []
    for k, g in d.groupby("k"):
        def ms(col: str, scale_: float = 100.0, digits: int = 1) -> str:
            return _ms(pd.to_numeric(g[col], errors="coerce") * scale_, digits)
        imagenet = dkw.PAPER_ENSEMBLES["imagenet"].get(int(k))
        rows.append({"teacher size": int(k), "teacher acc (%)": f"{g['teacher_accuracy'].iloc[0] * 100:.1f}",
                     "student acc (%)": ms("accuracy"), "agreement (%)": ms("agreement"),
                     "KL": ms("kl", 1.0, 3), "seeds": len(g),
                     "paper, ImageNet": "—" if imagenet is None else " / ".join(f"{x:g}" for x in imagenet)})
    return pd.DataFrame(rows)


def paper_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's headline numbers beside ours (from the records)."""
    df = student_table(profile, store=store) if df is None else df

    def mean(claim: int, metric: str, **where: Any) -> str:
        if df.empty:
            return NOT_YET_RUN
        d = df[df.claim == claim]
        for k, v in where.items():
            d = d[d[k] == v]
        if d.empty:
            return NOT_YET_RUN
        return _ms(pd.to_numeric(d[metric], errors="coerce") * 100, 1) + "%"

    mn = student_table(profile, "mnist", store)
    mnist = NOT_YET_RUN if mn.empty else _ms(pd.to_numeric(mn[mn.claim == 1]["agreement"]) * 100, 1) + "%"
    ens = dkw.PAPER_ENSEMBLES["imagenet"]
    rows = [
        ("Self-distillation test agreement (1 teacher)", f"{ens[1][2]}% (ImageNet ResNet-50)", mean(1, "agreement")),
        ("Agreement, 5-member ensemble teacher", f"{ens[5][2]}% (ImageNet)", mean(2, "agreement", k=5)),
        ("Student accuracy, 1 → 5 members", f"{ens[1][1]}% → {ens[5][1]}% (ImageNet)",
         f"{mean(2, 'accuracy', k=1)} → {mean(2, 'accuracy', k=5)}"),
        ("Best policy's agreement (MixUp τ=4)", f"about {dkw.PAPER_AGREEMENT['cifar100_best_policy_mixup_t4']:g}% "
         "(CIFAR-100)", mean(3, "agreement", policy="mixup_t4")),
        ("LeNet-5 on MNIST, agreement", f"> {dkw.PAPER_AGREEMENT['mnist_lenet5_min']:g}%", mnist),
    ]
    return pd.DataFrame(rows, columns=["quantity", "paper", "ours"])


def selection_frame(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    p = dkw.plan(profile, dataset, store or ResultStore())
    rows = p.selection_rows()
    cols = ["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"]
    if not rows:
        return pd.DataFrame(columns=["data"] + cols)
    out = pd.DataFrame(rows)[cols]
    out.insert(0, "data", DATASET_NAMES[dataset])
    return out


def selection_view(profile: str, store: ResultStore | None = None) -> present.Table:
    t = pd.concat([selection_frame(profile, ds, store) for ds in ("fashion_mnist", "mnist")], ignore_index=True)
    t["chosen"] = t["chosen"].map(lambda c: "✔" if c is True else "")
    return present.results_table(t, {"data": "data", "arm": "arm", "lr": "lr", "epochs": "epochs",
                                     "val_accuracy": "val accuracy", "val_nll": "val NLL", "chosen": "chosen",
                                     "status": "status"}, device=None, max_rows=30,
                                 caption="Learning-rate candidates (seed 0), judged on held-out training images")


def selection_notes(profile: str, store: ResultStore | None = None) -> str:
    """One sentence per selection whose chosen rate lies at an edge of its grid (or "every rate inside")."""
    notes = []
    for ds in ("fashion_mnist", "mnist"):
        t = selection_frame(profile, ds, store)
        for arm_, g in t.groupby("arm", sort=False):
            chosen = g[g["chosen"] == True]  # noqa: E712
            if chosen.empty or len(g) < 2:
                continue
            lr, acc = float(chosen["lr"].iloc[0]), float(chosen["val_accuracy"].iloc[0])
            if lr in (g["lr"].min(), g["lr"].max()):
                spread = g["val_accuracy"].max() - g["val_accuracy"].min()
                notes.append(f"{DATASET_NAMES[ds]} {arm_}: chose {lr:g}, the {'lowest' if lr == g['lr'].min() else 'highest'}"
                             f" rate of its grid (validation accuracy {acc:.1%}; the candidates span "
                             f"{spread * 100:.1f} points)")
    if not notes:
        return "Every chosen rate lies inside its grid." if any(
            not selection_frame(profile, ds, store).empty for ds in ("fashion_mnist", "mnist")) else ""
    return "**At a grid edge:** " + "; ".join(notes) + "."


def wall_time_s(profile: str, store: ResultStore | None = None) -> float:
    """Total recorded wall time of the chapter's runs of `profile` (selection, teachers, students)."""
    store = store or ResultStore()
    total = 0.0
    for rec in store.records(dkw.EXPERIMENT):
        if rec.get("config", {}).get("profile") == profile:
            total += float(rec.get("wall_time_s") or 0.0)
    return total


def plain_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> present.Table | None:
    """Claim 1: the plain models (teacher recipe, members 1..), the teacher (member 0) and the self-distilled
    students, mean ± std over seeds/members."""
    df = student_table(profile, store=store) if df is None else df
    t = teacher_table(profile, store=store)
    if t.empty:
        return None
    r = dkw.recipe(profile)
    full = t[t["half"].isna()]
    rows = []

    def add(name: str, g: pd.DataFrame, epochs: int) -> None:
        row = {"model": name, "epochs": epochs, "runs": len(g)}
        for m, label in (("accuracy", "test acc (%)"), ("nll", "NLL"), ("ece", "ECE"),
                         ("agreement", "agreement (%)"), ("kl", "KL(t‖s)")):
            if m in g:
                scale_ = 100.0 if "%" in label else 1.0
                row[label] = _ms(pd.to_numeric(g[m], errors="coerce") * scale_, 1 if scale_ == 100 else 3)
            else:
                row[label] = "—"
        rows.append(row)

    add("teacher (member 0)", full[full.member == 0], r.teacher_epochs)
    plain = full[full.member.between(1, len(r.seeds))]
    if not plain.empty:
        add(f"plain (members 1–{len(r.seeds)})", plain, r.teacher_epochs)
    if not df.empty and not df[df.claim == 1].empty:
        add("students", df[df.claim == 1], r.student_epochs)
    out = pd.DataFrame(rows).replace({"nan": "—"})
    return present.results_table(out, device=None, caption="Claim 1: plain models, the teacher and its students")


def protocol_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The recipe of `profile` in prose, with the recorded wall time."""
    r = dkw.recipe(profile)
    m = dkw.recipe(profile, "mnist")
    p = dkw.plan(profile, store=store or ResultStore())
    t_lr = "not yet selected" if p.teacher is None else f"{p.teacher.lr:g}"
    lrs = ", ".join(f"{f}: {lr:g}" for f, lr in p.lrs.items()) or "not yet selected"
    widths = "the authors' widths" if r.widths is None else f"widths {'-'.join(map(str, r.widths))}"
    wall = wall_time_s(profile, store)
    return (
        f"**Scale (`{profile}`).** {DATASET_NAMES[r.dataset]}: {r.n_train or 'all':,} training images (a fixed "
        f"random subset), {r.val_size:,} held-out training images for lr selection, {r.n_test or 'all':,} test "
        f"images. Teacher and student: {r.teacher_model} ({widths}), the same architecture (self-distillation). "
        f"Teachers: {r.teacher_epochs} epochs, SGD with Nesterov momentum 0.9, weight decay {r.weight_decay:g}, "
        f"cosine schedule, batch {r.teacher_batch_size}, crop/flip; lr from {list(r.teacher_lrs)} (chosen: "
        f"{t_lr}). Students: pure distillation (α=0 in the paper's notation, the KD term only) at τ=4 (τ=1 for "
        f"MixUp τ=1), {r.student_epochs} epochs (the authors' 300:200 student-to-teacher ratio), same optimiser; "
        f"lr from {list(r.student_lrs)}, one rate per family (chosen: {lrs}). Seeds {list(r.seeds)} for every "
        f"student arm; the student's initial weights come from seed 100 + s, never from a teacher's seed. "
        f"Ensembles of {', '.join(map(str, r.ensemble_sizes))} members (seeds 0..{r.n_members - 1} of the "
        f"teacher recipe). Near-saturated check: {m.teacher_model} on {DATASET_NAMES['mnist']} at the same sizes."
        f"\n\n**Budget.** {r.notes[:1].upper() + r.notes[1:]}. Recorded wall time of all runs of this profile: {wall / 60:.0f} minutes "
        f"(one thread)."
    )


def verdict_summary(verdicts: list[Verdict]) -> present.Table:
    rows = [{"claim": f"{i}. {v.claim}", "verdict": f"{v.badge} {v.label}", "effect (95% interval)": v.effect or "—"}
            for i, v in enumerate(verdicts, start=1)]
    return present.results_table(pd.DataFrame(rows), device=None, wrap=("verdict", "effect (95% interval)"),
                                 wide=("claim",))


def plan_keys(profile: str, store: ResultStore | None = None) -> set[str]:
    """Keys of every run the current plan of `profile` uses (selections, teachers, students; both data sets)."""
    store = store or ResultStore()
    keys: set[str] = set()
    for ds in ("fashion_mnist", "mnist"):
        p = dkw.plan(profile, ds, store)
        keys |= {c.key() for c in dkw.teacher_selection(profile, ds)}
        if p.teacher is None:
            continue
        keys |= {c.key() for c in dkw.teacher_configs(profile, ds, p.teacher_lr)}
        for fam in dkw.FAMILIES:
            keys |= {s.key() for s in dkw.selection_specs(fam, profile, ds, p.teacher_lr)}
        for claim in dkw.CLAIMS:
            keys |= {s.key() for s in p.specs(claim)}
    return keys


def discarded_runs(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Recorded runs of `profile` that the current plan does not use (earlier recipes), kept for the record
    and shown in the deviations, outside every table and verdict."""
    store = store or ResultStore()
    keep = plan_keys(profile, store)
    rows = []
    for rec in store.records(dkw.EXPERIMENT):
        cfg = rec.get("config", {})
        if cfg.get("profile") != profile or rec.get("key") in keep:
            continue
        teacher = cfg.get("role") == "teacher"
        hist = rec.get("history") or [{}]
        ds = cfg["data"]["dataset"] if teacher else cfg.get("dataset")
        rows.append({"data": DATASET_NAMES.get(ds, ds),
                     "run": "teacher member" if teacher else
                     f"student ({cfg.get('policy')}, {len(cfg.get('teachers', []))} teacher"
                     f"{'s' if len(cfg.get('teachers', [])) > 1 else ''})",
                     "seed": cfg.get("seed"), "epochs": cfg["train"]["epochs"] if teacher else cfg.get("epochs"),
                     "lr": cfg["train"]["lr"] if teacher else cfg.get("lr"), "status": rec.get("status"),
                     "final train acc": hist[-1].get("train_acc"),
                     "val_accuracy": rec.get("metrics", {}).get("val_accuracy")})
    return pd.DataFrame(rows, columns=["data", "run", "seed", "epochs", "lr", "status", "final train acc",
                                       "val_accuracy"])


__all__ = ["selection_notes", "discarded_runs", "plan_keys", "plain_table", "protocol_markdown", "verdict_summary",
           "claim_table", "ensemble_table", "paper_table", "selection_frame", "selection_view", "wall_time_s"]
