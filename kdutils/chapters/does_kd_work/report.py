"""The report of "Does knowledge distillation really work?": tables and the prose that carries numbers,
read from the records only (nothing here trains). The claims and their verdict rules are in `claims`, the figures
in `figures`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from kdutils.chapters.does_kd_work import matched
from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.chapters.does_kd_work.tables import (DATASET_NAMES, POLICY_NAMES, _ms, baseline_table, student_table,
                                                  teacher_table, version_of)
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_YET_RUN, Verdict

# ------------------------------------------------------------------------------------------------- tables
METRICS = {"teacher_accuracy": "teacher acc (%)", "accuracy": "test acc (%)", "agreement": "test agreement (%)",
           "kl": "test KL(t‖s)", "train_agreement": "train agreement (%)", "train_kl": "train KL(t‖s)",
           "train_distill_loss": "train τ²KL at τ", "nll": "NLL", "ece": "ECE"}
GROUPS = {"policy": "policy", "distill_data": "distillation data", "n_distill": "distillation images", "r": "r",
          "k": "teachers", "n_unlabelled": "unlabelled images"}


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
            elif col in ("n_distill", "n_unlabelled"):
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
    """The poster's numbers beside ours (from the records); "no number" where the poster states a claim only."""
    store = store or ResultStore()
    df = student_table(profile, store=store) if df is None else df
    mn = student_table(profile, "mnist", store)
    base = baseline_table(profile, store=store)

    def mean(frame: pd.DataFrame, claim: int | None, metric: str, **where: Any) -> str:
        d = frame if claim is None or frame.empty else frame[frame.claim == claim]
        for k, v in where.items():
            d = d if d.empty else d[d[k] == v]
        if d.empty:
            return NOT_YET_RUN
        return _ms(pd.to_numeric(d[metric], errors="coerce") * 100, 1) + "%"

    ens = dkw.PAPER_ENSEMBLES["imagenet"]
    most = max(dkw.recipe(profile, "mnist", version_of(profile, store)).unlabelled or (0,))
    rows = [
        ("Student's test agreement, 1 teacher", f"{ens[1][2]}% (ImageNet)", mean(df, 1, "agreement")),
        ("Plain models' agreement with the teacher (baseline)", "no number",
         mean(base, None, "agreement", kind="plain")),
        ("Agreement, 5-member ensemble teacher", f"{ens[5][2]}% (ImageNet)", mean(df, 2, "agreement", k=5)),
        ("Student accuracy, 1 → 5 members", f"{ens[1][1]}% → {ens[5][1]}% (ImageNet)",
         f"{mean(df, 2, 'accuracy', k=1)} → {mean(df, 2, 'accuracy', k=5)}"),
        ("Best policy's agreement (MixUp τ=4)", f"about {dkw.PAPER_AGREEMENT['cifar100_best_policy_mixup_t4']:g}% "
         "(CIFAR-100)", mean(df, 3, "agreement", policy="mixup_t4")),
        ("LeNet-5 on MNIST, agreement", "no number", mean(mn, 1, "agreement")),
        ("LeNet-5 on MNIST, α=0 with " + (f"{most:,} " if most else "") + "unlabelled images, agreement",
         "matches the teacher (no number)",
         mean(mn, 7, "agreement", n_unlabelled=most) if most else NOT_YET_RUN),
    ]
    return pd.DataFrame(rows, columns=["quantity", "paper", "ours"])


def teacher_view(profile: str, store: ResultStore | None = None) -> present.Table | None:
    """The teachers' convergence: every teacher-recipe run of the active recipe with its final training
    accuracy and the slope of its last 5 epochs (the gate's numbers), and its test accuracy."""
    from kdutils.verdicts.gates import last_epochs_slope

    store = store or ResultStore()
    rows = []
    for ds in ("fashion_mnist", "mnist"):
        p = dkw.plan(profile, ds, store)
        if p.teacher is None:
            continue
        for cfg in dkw.teacher_configs(profile, ds, p.teacher_lr, p.version):
            rec = store.get(cfg)
            if rec is None:
                continue
            hist = rec.get("history") or []
            final = hist[-1].get("train_acc") if hist else None
            slope = last_epochs_slope(hist)
            rows.append({"data": DATASET_NAMES[ds], "member": cfg.seed,
                         "half": "—" if cfg.data.fold is None else str(1 - cfg.data.fold), "epochs": cfg.train.epochs,
                         "lr": cfg.train.lr, "final train acc (%)": "—" if final is None else f"{100 * final:.1f}",
                         "last-5-epoch slope (pts/epoch)": f"{100 * slope:+.2f}",
                         "test acc (%)": f"{100 * rec['metrics'].get('accuracy', float('nan')):.1f}",
                         "status": rec["status"]})
    if not rows:
        return None
    return present.results_table(pd.DataFrame(rows), device=None, max_rows=30,
                                 caption="Teachers (recipe " + version_of(profile, store) + "): the convergence gate "
                                         "asks for a final training accuracy of at least 90% and a slope of at most "
                                         "+0.2 pts per epoch over the last 5 epochs")


def selection_frame(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    store = store or ResultStore()
    p = dkw.plan(profile, dataset, store)
    rows = p.selection_rows()
    short = matched.chosen(profile, dataset, store, p.version) if matched.needed(profile, dataset, p.version) else None
    rows += [] if short is None else list(short.rows)
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
    from kdutils.sweeps.tuning import edge_notes

    notes = []
    for ds in ("fashion_mnist", "mnist"):
        t = selection_frame(profile, ds, store)
        if not t.empty:
            notes += edge_notes(t.to_dict("records"), prefix=f"{DATASET_NAMES[ds]} ")
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
    store = store or ResultStore()
    r = dkw.recipe(profile, version=version_of(profile, store))
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
    base = baseline_table(profile, store=store)
    if not base.empty and not base[base["kind"] == "plain"].empty:
        add(f"plain (members 1–{len(r.seeds)}) vs the teacher", base[base["kind"] == "plain"], r.teacher_epochs)
    short = matched.records(profile, "fashion_mnist", store, r.version) if matched.needed(
        profile, "fashion_mnist", r.version) else None
    if short:
        add(f"plain at the students' budget (members 1–{len(r.seeds)})",
            pd.DataFrame([{**x["metrics"], "status": x["status"]} for x in short]),
            matched.matched_epochs(r, "fashion_mnist"))
    if not df.empty and not df[df.claim == 1].empty:
        add("students", df[df.claim == 1], r.student_epochs)
    out = pd.DataFrame(rows).replace({"nan": "—"})
    return present.results_table(out, device=None, caption="Claim 1: plain models, the teacher and its students")


def _count(n: int | None) -> str:
    """A number of images as the page writes it; None (no cap) is "all"."""
    return "all" if n is None else f"{n:,}"


def protocol_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The recipe the page's numbers come from (the active version), in prose, with the recorded wall time."""
    store = store or ResultStore()
    version = version_of(profile, store)
    r = dkw.recipe(profile, version=version)
    m = dkw.recipe(profile, "mnist", version)
    p = dkw.plan(profile, store=store)
    t_lr = "not yet selected" if p.teacher is None else f"{p.teacher.lr:g}"
    lrs = ", ".join(f"{f}: {lr:g}" for f, lr in p.lrs.items()) or "not yet selected"
    widths = "the authors' widths" if r.widths is None else f"widths {'-'.join(map(str, r.widths))}"
    wall = wall_time_s(profile, store)
    per = "one rate per policy" if r.lr_per_policy else "one rate per family"
    if r.max_extensions:
        per += (f"; every grid whose choice sits at an edge is extended past it (up to {r.max_extensions} rates, a "
                f"factor {r.extend_factor:g} apart; the selection table lists every candidate)")
    latest = dkw.latest(profile)
    newer = "" if version == latest else (
        f" A newer recipe ({latest}) is being recorded ({dkw.missing_runs(profile, latest, store)} of its runs not "
        f"yet, counting every run whose rate is still to be chosen), so this page shows recipe {version}, the "
        f"newest wholly recorded one.")
    short = [f"{DATASET_NAMES[ds]} {matched.matched_epochs(dkw.recipe(profile, ds, version), ds)} epochs"
             for ds in ("fashion_mnist", "mnist") if matched.needed(profile, ds, version)]
    budget = (f" The generalisation parts of claims 1 and 7 compare with plain models trained for the students' "
              f"image-epochs ({', '.join(short)} on the labelled images; lr from the teacher and student grids "
              f"together, chosen on held-out images), not with the teacher recipe's." if short else "")
    unl = (f" Claim 7: LeNet-5 students given {', '.join(f'{u:,}' for u in m.unlabelled)} extra unlabelled MNIST "
           "training images the teacher never saw (pure distillation)." if m.unlabelled else "")
    return (
        f"**Recipe {version} (`{profile}`).**{newer} {DATASET_NAMES[r.dataset]}: "
        f"{_count(r.n_train)} training images (a fixed random subset), {r.val_size:,} held-out training images "
        f"for lr selection, {_count(r.n_test)} test images. Teacher and student: {r.teacher_model} ({widths}), "
        f"the same architecture (self-distillation). Teachers: {r.teacher_epochs} epochs, SGD with Nesterov "
        f"momentum 0.9, weight decay {r.weight_decay:g}, cosine schedule, batch {r.teacher_batch_size}, crop/flip; "
        f"lr from {[c.train.lr for c in dkw.teacher_selection(profile, r.dataset, version, store)]} (chosen: {t_lr}). "
        f"Students: pure distillation (α=0 in the paper's "
        f"notation, the KD term only) at τ=4 (τ=1 for MixUp τ=1), {r.student_epochs} epochs, same optimiser; lr "
        f"from {list(r.student_lrs)}, {per} (chosen: {lrs}). Seeds {list(r.seeds)} for claims 1, 2, 4 and 6, "
        f"{list(r.seeds_3_5)} for claims 3 and 5; the student's initial weights come from seed 100 + s, never from "
        f"a teacher's seed. Ensembles of {', '.join(map(str, r.ensemble_sizes))} members (seeds "
        f"0..{r.n_members - 1} of the teacher recipe). Near-saturated check: {m.teacher_model} on "
        f"{DATASET_NAMES['mnist']}, {m.teacher_epochs} teacher epochs, augmentation {m.augment(dkw.BASE_POLICY)}."
        f"{unl}{budget}\n\n**Budget.** {r.notes[:1].upper() + r.notes[1:]}. Recorded wall time of all runs of this profile: "
        f"{wall / 60:.0f} minutes (one thread)."
    )


def verdict_summary(verdicts: list[Verdict]) -> present.Table:
    rows = [{"claim": f"{i}. {v.claim}", "verdict": f"{v.badge} {v.label}", "effect (95% interval)": v.effect or "—"}
            for i, v in enumerate(verdicts, start=1)]
    return present.results_table(pd.DataFrame(rows), device=None, wrap=("verdict", "effect (95% interval)"),
                                 wide=("claim",))


def plan_keys(profile: str, store: ResultStore | None = None) -> set[str]:
    """Keys of every run the active recipe's plan uses (selections, teachers, students, baselines; both data
    sets)."""
    store = store or ResultStore()
    keys: set[str] = set()
    for ds in ("fashion_mnist", "mnist"):
        p = dkw.plan(profile, ds, store)
        keys |= {c.key() for c in dkw.teacher_selection(profile, ds, p.version, store)}
        if p.teacher is None:
            continue
        keys |= {c.key() for c in dkw.teacher_configs(profile, ds, p.teacher_lr, p.version)}
        for fam in dkw.families(p.recipe):
            keys |= {s.key() for s in dkw.selection_specs(fam, profile, ds, p.teacher_lr, p.version, store)}
        for claim in dkw.CLAIMS:
            keys |= {s.key() for s in p.specs(claim)}
        keys |= {s.key() for s in p.baselines()}
        if matched.needed(profile, ds, p.version):
            keys |= {c.key() for c in matched.selection(profile, ds, p.version, store)}
            short = matched.chosen(profile, ds, store, p.version)
            keys |= set() if short is None else {c.key() for c in matched.configs(profile, ds, short.lr, p.version)}
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
        teacher = cfg.get("role") in ("teacher", matched.ROLE)  # a teacher-recipe run
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


__all__ = ["teacher_view", "selection_notes", "discarded_runs", "plan_keys", "plain_table", "protocol_markdown", "verdict_summary",
           "claim_table", "ensemble_table", "paper_table", "selection_frame", "selection_view", "wall_time_s"]
