"""The LS-KD chapter's page: the prose that carries numbers (protocol, wall time, findings), from the records.

`plan` defines the runs and `analysis` records what needs checkpoints; `claims` holds the verdict rules, `tables`
and `figures` the rest of the page. Everything here works on a store with missing records and then says "not
yet run".
"""
from __future__ import annotations


import pandas as pd

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
from kdutils.chapters.ls_kd.claims import _tau, claim1_effect, gate, results_frame
from kdutils.chapters.ls_kd.tables import _scored, sensitivity_frame
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_YET_RUN, REPRODUCED, Verdict

# ---- prose -------------------------------------------------------------------------------------------------------

def protocol_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    r = recipes.recipe(profile)
    data = ("all 60,000 Fashion-MNIST training images" if r.n_train is None else
            f"a {r.n_train:,}-image subset of Fashion-MNIST's training split")
    test = "the 10,000 test images" if r.n_test is None else f"{r.n_test:,} test images"
    sk = r.model_kwargs
    def arch(m):  # noqa: E306
        if m in sk and "hidden" in sk[m]:
            return f"{m} (hidden {'-'.join(map(str, sk[m]['hidden']))})"
        return m + (f" (widths {'-'.join(map(str, sk[m]['widths'][1:]))})" if m in sk and "widths" in sk[m] else "")
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    matched = ("; matched temperatures " + ", ".join(f"LS tau {_tau(a)} ↔ plain tau* {_tau(b)}"
                                                      for a, b in sorted(p.matched.items()))) if p.matched else ""
    return (
        f"**Data.** Training on {data}, evaluation on {test}; {r.val_size:,} training images are held out for "
        "learning-rate selection only (the final runs train on the whole training subset).\n\n"
        f"**Teachers.** {arch(r.teacher_model)} trained with cross-entropy on LS targets, LS ∈ "
        f"{{{', '.join(f'{v:g}' for v in r.ls_values)}}}, augmentation `{r.teacher_augment}`, SGD (momentum 0.9, "
        f"weight decay 5e-4, batch {r.batch_size}), {r.teacher_epochs} epochs, rate / 10 at 40% and 80%, one seed.\n\n"
        f"**Students.** {', '.join(arch(m) for m in r.student_models)}, {r.student_epochs} epochs, same optimiser, "
        "un-augmented images (so each teacher's logits are computed once), KD term only: "
        "$\\tau^2\\,\\mathrm{KL}(p_t^\\tau \\| p_s^\\tau)$ at $\\tau \\in \\{1, 2, 3, 64\\}$ for each teacher, plus "
        f"the plain teacher at the temperatures of matched entropy{matched}; the student alone on hard labels "
        f"(same budget) for the testable gate. Seeds {', '.join(map(str, r.seeds))}, paired.\n\n"
        f"**Learning rates.** Per arm on the validation split: teachers from "
        f"{{{', '.join(f'{x:g}' for x in r.teacher_lrs)}}} ({r.select_teacher_epochs or r.select_epochs}-epoch "
        f"runs), each student arm from {{{', '.join(f'{x:g}' for x in r.student_lrs)}}} ({r.select_epochs}-epoch "
        "runs), one seed, by validation accuracy (ties: validation NLL).\n\n"
        f"**Budget.** {r.notes}.")


def wall_time_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    recs = [store.get(c) for c in p.all_configs()]
    secs = [r.get("wall_time_s") or 0.0 for r in recs if r is not None]
    if not secs:
        return f"No runs are recorded for profile `{profile}` yet."
    df = results_frame(profile, store, p)
    devices = ", ".join(sorted({present.short_device(d) for d in df["device"].dropna()})) or "unknown device"
    return (f"The {len(secs)} recorded runs of profile `{profile}` (selection candidates included) took "
            f"{sum(secs) / 60:.1f} minutes of training and evaluation in all on {devices}, as recorded in "
            "their records (each run's own time; runs trained together share their training time).")


def findings_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    """What the recorded runs say, in a few sentences with their numbers (read from the records)."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    df = results_frame(profile, store, p)
    model = recipes.recipe(profile).student_models[0]
    if df.empty or not len(p.teachers):
        return f"No runs of profile `{profile}` are recorded yet ({NOT_YET_RUN})."
    g, gate_text = gate(profile, df, store, p, model)
    if g.label == NOT_YET_RUN:
        return f"Not all runs of profile `{profile}` are recorded yet ({NOT_YET_RUN})."
    scored = _scored(df)
    means = scored[scored.kind == "student"].groupby("arm").accuracy.mean()
    alone = scored[scored.arm == recipes.alone_arm(model)].sort_values("seed").accuracy
    best_arm = means.idxmax()
    beat_alone = [a for a in means.index if means[a] > alone.mean()]
    worst_arm = means.idxmin()
    text = (f"**Testable gate.** {gate_text} Gate: {g.reason}.\n\n"
            f"**The student alone is hard to beat at this scale.** Its mean test accuracy is {alone.mean():.2f}% "
            f"(seeds: {', '.join(f'{v:.2f}' for v in alone)}); the best distilled arm, {best_arm}, reaches "
            f"{means[best_arm]:.2f}%, and {len(beat_alone)} of {len(means)} distilled arms have a higher mean than "
            f"the student alone. The weakest arm at its selected rate is {worst_arm} ({means[worst_arm]:.2f}%).")
    sens = sensitivity_frame(profile, store, p)
    if not sens.empty:
        listing = "; ".join(f"{row['LS - plain (pts)']} at lr {row['lr']}" for _, row in sens.iterrows())
        main = claim1_effect(df, model)
        if (sens["LS better?"] != REPRODUCED).all() and (sens["_diff"].abs() < 1.0).all():
            text += (f"\n\n**Claim 1 depends on the selected rates.** At the selected rates, {main}; trained at a "
                     f"common rate, LS minus plain at tau = 1 is {listing}: at no common rate is the LS teacher's "
                     "student clearly better, so the advantage in the main table comes from the rates the two arms' "
                     "short selection runs picked (table below).")
        else:
            text += (f"\n\n**Claim 1 at common rates.** At the selected rates, {main}; at a common rate, LS minus "
                     f"plain at tau = 1 is {listing} (table below).")
    return text


def verdict_table(verdicts: list[Verdict]):
    frame = pd.DataFrame([{"claim": v.claim, "verdict": f"{v.badge} {v.label}", "effect": v.effect or "—"}
                          for v in verdicts])
    return present.results_table(frame, status=None, device=None, wrap=("effect",), wide=("claim",), max_rows=10,
                                 caption="Verdicts (details and evidence below).")


__all__ = ["findings_markdown", "protocol_markdown", "verdict_table", "wall_time_markdown"]
