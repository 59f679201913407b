"""The report side of the invariance-KD chapter (Odagiu et al.): what the reverse-KL runs showed and the prose
and small tables of the notebooks, every number from the records.

The experiment (`recipes`, `plan`) never imports the reading side (`tables`, `figures`, `claims`, this module),
so the two can change independently. Nothing here trains: a missing record is "not yet run".
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from kdutils.chapters.invariance.claims import (PAPER_MNIST, arm_scores, testability_table,
                                                verdict_augmentation, verdict_generalisation, verdict_transfer)
from kdutils.chapters.invariance.recipes import PAIR_INFO, PAIRS, REVERSE_TAUS, experiment_name, _row_label
from kdutils.chapters.invariance.tables import figure_rows, current_keys, results_table, scale_text, selection_table
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import NOT_REPRODUCED, REPRODUCED, beats


# ---------------------------------------------------------------------------------------------------------
# The KL direction: what the reverse-KL runs showed


def direction_table(table: pd.DataFrame) -> pd.DataFrame:
    """Teacher -> student runs at the temperatures where both KL directions ran: fold means of accuracy,
    agreement, KL and IM, how many runs failed (diverged or at chance) and how many are below twice chance."""
    t = table[(table.role == "distilled") & table.tau.isin(REVERSE_TAUS)]
    if t.empty:
        return pd.DataFrame()
    g = t.groupby(["pair", "student", "tau", "direction"])
    out = g[["accuracy", "agreement", "kl", "im_l1"]].mean()
    out["failed"] = g["failed"].sum().astype(int).astype(str) + "/" + g.size().astype(str)
    out["below 2x chance"] = g["collapsed"].sum().astype(int).astype(str) + "/" + g.size().astype(str)
    return out.reset_index()


def reverse_kl_account(profile: str, store: ResultStore | None = None) -> dict[str, Any]:
    """Counted from the records (every recipe ever recorded at `profile`, current and earlier): how many
    reverse-KL teacher -> student runs there are, how many failed or sat below twice chance, and the paired
    accuracy difference reverse - forward per (row, tau) over folds."""
    everything = results_table(profile, store=store, current_only=False)
    current = results_table(profile, store=store)
    out: dict[str, Any] = {"rows": []}
    for name, t in (("all", everything), ("current", current)):
        rev = t[(t.role == "distilled") & (t.direction == "reverse")]
        out[name] = {"runs": int(len(rev)), "failed": int(rev.failed.sum()), "collapsed": int(rev.collapsed.sum()),
                     "by_tau": {float(k): int(v) for k, v in rev.groupby("tau").size().items()}}
    for pair, student in figure_rows(profile):
        for tau in REVERSE_TAUS:
            fwd = arm_scores(current, pair, student, "distilled", "accuracy", tau, "forward")
            rev = arm_scores(current, pair, student, "distilled", "accuracy", tau, "reverse")
            if not rev.values:
                continue
            diff = stats.paired_difference(rev.values, fwd.values)
            out["rows"].append({"row": _row_label(pair, student), "tau": tau,
                                "accuracy reverse - forward": diff.describe(digits=2, scale=100, unit="pts"),
                                "decision (reverse worse)": beats(diff, "less").label,
                                "failed reverse runs": rev.failed})
    return out


def reverse_kl_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The reverse-KL finding as prose, every number from `reverse_kl_account`."""
    a = reverse_kl_account(profile, store)
    if a["all"]["runs"] == 0:
        return "No reverse-KL run is recorded at this profile yet."
    cur, allr = a["current"], a["all"]
    worse = sum(r["decision (reverse worse)"] == REPRODUCED for r in a["rows"])
    better = sum(r["decision (reverse worse)"] == NOT_REPRODUCED for r in a["rows"])
    text = (f"At profile `{profile}` the records hold {allr['runs']} reverse-KL teacher -> student runs "
            f"(current and earlier recipes); {allr['failed']} of them failed (diverged or at chance) and "
            f"{allr['collapsed']} ended below twice chance accuracy. ")
    if cur["runs"]:
        text += (f"Of the current recipe's {cur['runs']} reverse-KL runs, {cur['failed']} failed. Against the "
                 f"forward KL at the same temperature (paired over folds), the reverse KL's accuracy is clearly "
                 f"lower in {worse} of {len(a['rows'])} (row, tau) comparisons and clearly higher in {better}; "
                 "the rest are within noise. ")
    text += ("So the collapse of the authors' tau = 1 students to chance is **not** reproduced by the reverse KL "
             "alone in our runs." if allr["failed"] == 0 and allr["collapsed"] == 0 else
             "Some reverse-KL runs did fail: see the table.")
    return text


def training_curves(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Per-epoch training loss and training accuracy (against the labels) of the current teacher -> student
    runs at the temperatures where both KL directions ran: shows whether a failed run ever learned."""
    store = store or ResultStore()
    rows = []
    for pair in PAIRS:
        keys = current_keys(profile, pair, store=store) or set()
        for rec in store.records(experiment_name(pair)):
            cfg = rec["config"]
            if (rec.get("key") not in keys or cfg["role"] != "distilled" or cfg["tau"] not in REVERSE_TAUS):
                continue
            for h in rec.get("history", []):
                rows.append({"pair": pair, "model": cfg["model"], "tau": cfg["tau"], "direction": cfg["kd_direction"],
                             "fold": cfg["data"]["fold"], "epoch": h["epoch"], "loss": h["loss"],
                             "train_acc": h["train_acc"]})
    return pd.DataFrame(rows)


def kl_gradients(p_teacher: torch.Tensor, student_logits: torch.Tensor) -> dict[str, float]:
    """Norm of the gradient of KL(P_t||P_s) (forward) and KL(P_s||P_t) (reverse) with respect to the student
    logits, for one example. The forward gradient is P_s - P_t; the reverse one is P_s * (log P_s - log P_t - KL),
    which vanishes with P_s itself on every class the student has (wrongly) ruled out."""
    out = {}
    log_t = torch.log_softmax(p_teacher.double().clamp_min(1e-300).log(), -1)  # renormalised in float64
    for direction in ("forward", "reverse"):
        z = student_logits.detach().double().clone().requires_grad_(True)
        log_s = torch.log_softmax(z, -1)
        if direction == "forward":
            loss = (log_t.exp() * (log_t - log_s)).sum()
        else:
            loss = (log_s.exp() * (log_s - log_t)).sum()
        loss.backward()
        assert z.grad is not None  # z is a leaf that requires grad, so backward() filled its gradient
        out[direction] = float(z.grad.norm())
    return out

# ---------------------------------------------------------------------------------------------------------
# Prose and small tables for the notebooks: every number comes from the records


def summary_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The chapter's one-paragraph summary of what we found, from the records of `profile`."""
    table = results_table(profile, store=store)
    if table.empty:
        return (f"**Our reproduction** at profile `{profile}`: not yet run (no records of the current recipe). "
                f"Run `python -m kdutils run invariance --profile {profile}` to produce them.")
    verdicts = [verdict_transfer(table, profile), verdict_augmentation(table, profile),
                verdict_generalisation(table, profile)]
    failed = int(table.failed.sum())
    tests = testability_table(table, profile)
    testable_rows = int((tests["testable"] == "yes").sum()) if not tests.empty else 0
    names = ("KD does not transfer the invariance", "augmentation is what works", "KD improves generalisation")
    claims = "; ".join(f"*{n}*: **{v.label}**" for n, v in zip(names, verdicts))
    return (f"**Our reproduction** ({scale_text(table, profile)}; {len(table)} runs of the current recipe, "
            f"{failed} of them failed and counted as such; every arm's learning rate chosen on a validation "
            f"split): {testable_rows} of {len(tests)} teacher -> student rows have a teacher clearly better "
            f"than the student alone. Claims: {claims}. Each verdict below gives its paired 95% intervals over "
            "folds.")


def invariance_check(records: list[dict[str, Any]], pair: str) -> str:
    """The structural check a point notebook states: the invariant teachers' IM is float rounding next to the
    students' (a sentence that says whether it holds, with the numbers)."""
    teachers = [r["metrics"].get("im_l1") for r in records if r["config"]["role"] in ("teacher", "teacher_prime")]
    students = [r["metrics"].get("im_l1") for r in records if r["config"]["role"] == "student"]
    teachers = [x for x in teachers if x is not None]
    students = [x for x in students if x is not None]
    if not teachers or not students:
        return "Not yet run: no teacher and student records to compare."
    ok = max(teachers) < 0.01 * min(students)
    what = {"resnet_mlp": "APS-ResNet teachers under circular shifts", "dgcnn_deepsets": "DGCNN teachers under "
            "translation", "deepsets_mlp": "DeepSets teachers under permutations"}[pair]
    return (f"{what}: largest IM {max(teachers):.4e}, against the students' smallest {min(students):.4e}; the "
            f"teachers' IM is {'below' if ok else 'NOT below'} 1% of the students' "
            f"({'as their architecture guarantees' if ok else 'check the run'}).")


def paper_beside_ours(table: pd.DataFrame) -> pd.DataFrame:
    """The ResNet -> MLP row beside the authors' published MNIST numbers: accuracy, ECE and IM. The authors'
    IM is the L2 norm under their 5-px roll (our `im_roll_l2`); our headline IM (L1, circular shifts) is
    shown too."""
    rows = []
    arms = (("teacher", None, "APS-ResNet18 teacher"), ("student", None, "MLP alone"),
            ("student_aug", None, "MLP on shifted images"), ("distilled", (4.0, 8.0, 16.0), "distilled, tau 4-16"))
    for role, taus, label in arms:
        t = table[(table.pair == "resnet_mlp") & (table.role == role)]
        if taus is not None:
            t = t[t.tau.isin(taus) & (t.direction == "forward")]
        if t.empty:
            continue
        paper = PAPER_MNIST[role]
        rows.append({"model": label, "accuracy": t.accuracy.mean(), "accuracy (paper)": paper["accuracy"],
                     "ECE": t.ece.mean(), "ECE (paper)": paper.get("ece", "—"),
                     "IM roll L2": t.im_roll_l2.mean() if "im_roll_l2" in t else math.nan,
                     "IM roll L2 (paper)": paper["im"], "IM L1 (ours, circular)": t.im_l1.mean(),
                     "flip rate": t.flip_rate.mean(), "runs": len(t), "failed": int(t.failed.sum())})
    return pd.DataFrame(rows)


def recipe_text(profile: str, pair: str, store: ResultStore | None = None) -> str:
    """The recipe of the runs the page shows for a pair: v2's once its records replace v1's
    (`tables.recipe_in_use`), else v1's."""
    from kdutils.chapters.invariance.plan import describe
    from kdutils.chapters.invariance.plan_v2 import describe_v2
    from kdutils.chapters.invariance.tables import recipe_in_use

    return describe_v2(profile, pair) if recipe_in_use(profile, pair, store) == "v2" else describe(profile, pair)


def previous_recipe_markdown(profile: str, store: ResultStore | None = None) -> str:
    """What the earlier recipes' teachers (on disk, out of the tables) reached, beside the current teachers:
    grouped by training-set size, with their distinct folds and their number of runs."""
    everything = results_table(profile, store=store, current_only=False)
    current = results_table(profile, store=store)
    if everything.empty:
        return ""
    old = everything[~everything.key.isin(set(current.key))]

    def group(t: pd.DataFrame) -> str:
        folds = sorted(int(f) for f in set(t.fold.dropna()))
        return (f"{t.accuracy.mean():.3f} on {int(t.n_train.max()):,} training examples per run ({len(t)} "
                f"run{'s' * (len(t) != 1)}, folds {', '.join(map(str, folds))})")
    lines = []
    for pair in PAIRS:
        o = old[(old.pair == pair) & (old.role == "teacher")]
        c = current[(current.pair == pair) & (current.role == "teacher")]
        if o.empty:
            continue
        earlier = "; ".join(group(t) for _, t in o.groupby("n_train"))
        lines.append(f"- {PAIR_INFO[pair].title}: teacher accuracy {earlier} in earlier recipes; "
                     f"{group(c) if not c.empty else 'not yet run'} now.")
    return "\n".join(lines)


def selection_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Where the selected rates fall in their grids, from the recorded selections (`tables.edge_table`): a rate
    at the grid's edge means the best rate may lie beyond it; and the rank-order check of recipe v2."""
    from kdutils.chapters.invariance.tables import edge_table

    sel = selection_table(profile, store)
    edges = edge_table(profile, store)
    if sel.empty and edges.empty:
        return "No selection is recorded at this profile yet."
    text = ""
    if not sel.empty:
        chosen = sel[sel.chosen == "✔"]
        failed = int((sel.status != "ok").sum())
        text = f"{len(chosen)} arms were selected from {len(sel)} candidates ({failed} of them failed). "
    if edges.empty:
        text += "**Edge check: passes** (no chosen rate sits at an edge of its grid)."
    else:
        listed = "; ".join(f"{r.pair} {r.arm} ({r.recipe}): {r.lr:g} at the {r.edge}" for r in edges.itertuples())
        text += (f"**Edge check: {len(edges)} arm(s) chose a rate at an edge of their grid**, so the best rate may "
                 f"lie beyond it: {listed}.")
        if (edges.recipe == "v1").any():
            text += (" v1's selection runs were also 0.3x the final length, and short runs favour larger rates; "
                     "recipe v2 selects at half length, extends an edge choice by up to two rates, and checks the "
                     "rank order at full length on one arm.")
    return text + " " + rank_check_markdown(profile, store)


def rank_check_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Recipe v2's recorded check that selection-length runs rank the rates as full-length runs do (the rates'
    accuracies are in `rank_check_table`), and where they disagree, what the checked arm gives at the
    full-length best rate (`rank_check_rerun_table`)."""
    from kdutils.chapters.invariance.plan_v2 import rank_check

    rc = rank_check(profile, store)
    if rc is None:
        return "Rank-order check (recipe v2): not yet run."
    verdict = "agree" if rc["same_choice"] else "DISAGREE"
    text = (f"Rank-order check (recipe v2, arm {rc['arm'].removeprefix('select:')}): the {rc['short_epochs']}-epoch "
            f"and {rc['full_epochs']}-epoch runs' validation-accuracy rankings of the rates have Kendall's tau "
            f"{rc['kendall_tau']:.2f}, and they {verdict} on the best rate (first table below).")
    if rc["same_choice"]:
        return text
    rerun = rank_check_rerun_table(profile, store)
    if rerun.empty:
        return text + (" The checked arm's final runs at the full-length best rate are not yet recorded "
                       "(`python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard 1/2`).")
    gates = set(rerun["fidelity gate"])
    outcome = (f"the fidelity gate {gates.pop()} at both rates" if len(gates) == 1
               else "the fidelity gate's outcome depends on the rate")
    return text + (" So the checked arm was also trained for its final runs at the full-length best rate (second "
                   f"table): {outcome}. Those runs are recorded beside the final runs and enter no verdict.")


def rank_check_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """The rank check's rates with their validation accuracy at selection length and at full length."""
    from kdutils.chapters.invariance.plan_v2 import rank_check

    rc = rank_check(profile, store)
    if rc is None:
        return pd.DataFrame()
    return pd.DataFrame([{"learning rate": lr,
                          f"val accuracy, {rc['short_epochs']} epochs (selection)": a,
                          f"val accuracy, {rc['full_epochs']} epochs (final length)": b,
                          "best at": " and ".join(n for n, i in (("selection", rc["best_short"]),
                                                                 ("final length", rc["best_full"])) if i == k)}
                         for k, (lr, a, b) in enumerate(zip(rc["lrs"], rc["short"], rc["full"]))])


def rank_check_rerun_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Where the rank check disagrees: the checked arm's fidelity gate and accuracy at the selected rate beside
    the same arm's final runs at the full-length best rate (`plan_v2.rank_check_rerun_configs`), paired over
    folds with the student alone. Shown, not judged: it says whether the arm's result hangs on the rate. Empty
    while the check agrees or the runs are not recorded."""
    from kdutils.chapters.invariance.claims import _rows, fidelity_gate
    from kdutils.chapters.invariance.plan_v2 import rank_check_rerun_configs
    from kdutils.chapters.invariance.recipe_v2 import RANK_CHECK

    store = store or ResultStore()
    cfgs = rank_check_rerun_configs(profile, store)
    if not cfgs or any(store.get(c) is None for c in cfgs):
        return pd.DataFrame()
    pair, student, tau = RANK_CHECK
    table = results_table(profile, pairs=(pair,), store=store)
    everything = results_table(profile, pairs=(pair,), store=store, current_only=False)
    arm = table.index.isin(_rows(table, pair, student, "distilled", tau, "forward").index)
    rerun = everything[everything.key.isin({c.key() for c in cfgs})]
    rows = []
    for name, t in (("selected", table), ("full-length best", pd.concat([table[~arm], rerun], ignore_index=True))):
        rate = sorted(set(_rows(t, pair, student, "distilled", tau, "forward").lr))
        gate, gain = fidelity_gate(t, pair, student, tau)
        acc = stats.paired_difference(arm_scores(t, pair, student, "distilled", "accuracy", tau, "forward").values,
                                      arm_scores(t, pair, student, "student", "accuracy").values)
        rows.append({"arm": f"{_row_label(pair, student)}, tau {tau:g}",
                     "rate": f"{name} ({', '.join(map(str, rate))})",
                     "agreement gain over alone": gain.describe("pts", digits=1, scale=100),
                     "fidelity gate": "passes" if gate.label == REPRODUCED else "fails",
                     "accuracy minus alone": acc.describe("pts", digits=1, scale=100)})
    return pd.DataFrame(rows)
