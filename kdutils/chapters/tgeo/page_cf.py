"""The cross-fitted recipe's section of the chapter page (notebooks/tgeo_report.ipynb): its prose, tables and
verdicts, formatted from the records (`report_cf`'s frames, `claims_cf`'s verdicts) so the notebook stays thin
and every number in its prose comes from a record. A profile without the records says "not yet run".

Every function takes `attempt` (`recipe_cf.ATTEMPTS`); None (the default) is the attempt the chapter shows as
its main result (`claims_cf.shown_attempt`), or while none is decided the one under way (`shown`).
`attempts_markdown` and `other_attempts` put the other attempts beside it, each with its outcome and its KD-room gate table.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from kdutils.chapters.tgeo import claims_cf, recipe_cf as rc, report_cf
from kdutils.chapters.tgeo.plan import ARM_LABELS
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts.power import ALPHA, POWER, detectable_effect

__all__ = ["alpha_caption", "alpha_missing_markdown", "arms_view", "attempts_markdown", "other_attempts",
           "power_markdown", "protocol_markdown", "room_diagnosis_markdown", "room_view", "shown", "status_markdown",
           "teachers_view", "verdicts_markdown"]

CAMPAIGN = "python -m kdutils.chapters.tgeo.campaign"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _label(arm: str) -> str:
    return rc.CF_LABELS.get(arm, ARM_LABELS.get(arm, arm))


def _not_yet(what: str, profile: str) -> object:
    return present.markdown(f"{what} of profile `{profile}` are not recorded yet (**not yet run**).")


def shown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> int:
    """`attempt`, or the attempt the chapter shows (`claims_cf.shown_attempt`), or while none is the newest whose
    selections are recorded (the one under way), else the newest."""
    if attempt is not None:
        return rc.check_attempt(attempt)
    store = store or ResultStore()
    found = claims_cf.shown_attempt(profile, store)
    if found is None:
        going = [a for a in rc.ATTEMPTS if claims_cf.progress(profile, store, a).selected]
        found = max(going, default=rc.LATEST)
    return found


def _no_room(profile: str, store: ResultStore, attempt: int = 1) -> bool:
    """Has the main student's KD-room gate failed (so the campaign trains none of its TGeo arms)?"""
    main = claims_cf.progress(profile, store, attempt).gates.get("main")
    return main is not None and main.decided and not main.passed


def attempts_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Which attempt is the main result and what became of each other one (`claims_cf.attempt_outcome`)."""
    store = store or ResultStore()
    main = shown(profile, store)
    def line(a: int, name: str) -> str:
        if a == main:
            return f"- **Attempt {a} ({name})**: the main result on this page"
        outcome = claims_cf.attempt_outcome(profile, store, a)
        where = ("its KD-room gate below" if outcome in ("not testable at this scale", "gate passed") else
                 f"`{CAMPAIGN} --profile {profile} --attempt {a} --dry-run` for its plan")
        return f"- **Attempt {a} ({name})**: {outcome} ({where})"

    lines = [line(a, name) for a, (name, _) in sorted(rc.ATTEMPTS.items(), reverse=True)]
    return "**Attempts at a setting where KD has room.**\n\n" + "\n".join(lines)


def other_attempts(profile: str, store: ResultStore | None = None) -> list[tuple[int, str, object]]:
    """(attempt, one heading line with its outcome, its KD-room gate table) of every attempt but the shown one,
    newest first: attempt 1 stays on the page as "not testable at this scale" with its gate table."""
    store = store or ResultStore()
    main = shown(profile, store)
    return [(a, f"**Attempt {a} ({name}): {claims_cf.attempt_outcome(profile, store, a)}.**",
             room_view(profile, store, a)) for a, (name, _) in sorted(rc.ATTEMPTS.items(), reverse=True) if a != main]


def alpha_missing_markdown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> str:
    """What the page says where the alpha-over-training figure would be, without TGeo-KD finals."""
    store = store or ResultStore()
    if _no_room(profile, store, shown(profile, store, attempt)):
        return (f"No TGeo-KD final is trained at profile `{profile}`: KD has no room for the main student (the gate "
                "above), so there is no learned α to show (**not run at this scale**).")
    return f"No TGeo-KD final of profile `{profile}` is recorded yet (**not yet run**)."


def status_markdown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> str:
    """Where the recipe stands at `profile`, and which recipe the verdicts at the top of the page come from."""
    store = store or ResultStore()
    a = shown(profile, store, attempt)
    pr = claims_cf.progress(profile, store, a)
    run = (f"`{CAMPAIGN} --profile {profile} --shard 1/2 --attempt {a}` (and `--shard 2/2` beside it; `--dry-run` "
           "for the plan)")
    main = pr.gates.get("main")
    no_room = (" KD has no room for the main student at this scale (its gate fails; table below), so its TGeo-KD "
               "arms, baselines and controls are not trained and the claims that need them are not testable here."
               if main is not None and main.decided and not main.passed else "")
    if a == claims_cf.shown_attempt(profile, store):
        return (f"**The chapter's main result** (attempt {a}, {rc.ATTEMPTS[a][0]}). The verdicts at the top of the "
                f"page and on the scorecard are this "
                f"recipe's ({pr.describe()}).{no_room} Rerun, or resume, with {run}.")
    if not pr.selected:
        return (f"**Not yet run** at profile `{profile}`: {pr.describe()}. Until its selections and main comparison "
                f"are recorded, the verdicts at the top of the page are the first recipe's (below). It runs with {run}.")
    return (f"**Not yet complete** at profile `{profile}` ({pr.describe()}). Until every main final is recorded, the "
            f"verdicts at the top of the page are the first recipe's (below); what is recorded is shown here. "
            f"It resumes with {run}.")


def protocol_markdown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> str:
    """The recipe at `profile` (from `recipe_cf`) and what the records chose (teacher rate, vanilla KD's alpha)."""
    from kdutils.chapters.tgeo.campaign import resolved

    store = store or ResultStore()
    a = shown(profile, store, attempt)
    r = rc.cf_recipe(profile, a)
    res = resolved(profile, store, a)
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    widths = ", ".join(str(kw.get("hidden")) for kw in r.capacity) or "none"
    convs = ", ".join(m for m, _ in r.hetero) or "none"
    chosen = ("" if res.teacher_lr is None else f" Chosen on validation: teacher rate {res.teacher_lr:g}"
              + ("" if res.vanilla is None else
                 f", vanilla KD at α = {rc.CF_ARMS[res.vanilla].alpha:g} (\"vanilla KD\" in the verdicts)") + ".")
    teachers = (f"Teachers: {r.k_folds} {r.teacher} parts, each trained for {_n(r.teacher_epochs, 'epoch')} on "
                f"{r.k_folds - 1} of the {r.k_folds} folds; each training image's teacher logits come from the part "
                "that did not see it" if r.teacher_logits == "crossfit" else
                f"Teacher: one {r.teacher}, trained for {_n(r.teacher_epochs, 'epoch')} on {r.teacher_pool:,} other "
                "training images, disjoint from the student's labelled and validation images, so its logits on "
                "every image the student sees are out of sample")
    return (f"**Scale (`{profile}`, attempt {a}: {rc.ATTEMPTS[a][0]}).** Fashion-MNIST, {train} labelled training "
            f"images, {r.val_size:,} validation "
            f"images held out (f_w's outer objective and every rate's selection), the "
            f"{'whole' if r.n_test is None else f'{r.n_test:,}-image'} test set for the numbers. {teachers} "
            f"(rate from {list(r.teacher_lrs)} after {_n(r.select_teacher_epochs, 'epoch')} on the labelled images"
            f"{'' if a == 1 else ', the selection attempt 1 recorded'}). Students: "
            f"MLP {r.student_kwargs.get('hidden')}, {_n(r.student_epochs, 'epoch')}, tau = {r.tau:g}; each arm's rate from "
            f"{list(r.student_lrs)} and f_w's Adam rate from {list(r.fusion_lrs)} on validation (seed 0), then "
            f"{_n(len(r.seeds), 'seed')}. Every TGeo arm's lookahead takes the real optimiser's step (momentum, weight "
            f"decay), except the plain-SGD lookahead arm kept to measure that choice. Other student widths: "
            f"{widths}; convolutional student: {convs}. {r.notes[:1].upper() + r.notes[1:]}.{chosen}")


def room_view(profile: str, store: ResultStore | None = None, attempt: int | None = None):
    t = report_cf.room_table(profile, store, shown(profile, store, attempt))
    t = t[t.n > 0] if not t.empty else t  # a student none of whose paired runs is recorded yet has no row
    if t.empty:
        return _not_yet("The KD-room gate's runs (student alone and vanilla KD at every seed)", profile)
    t = t.assign(room=["✔ passes" if p else "✘ fails" for p in t.room])
    return present.results_table(
        t, {"student": "student", "vanilla minus alone (pts)": "vanilla KD minus alone (pts)", "low": "95% low",
            "high": "95% high", "n": "seeds", "margin": "margin (pts)", "room": "KD has room"},
        formats={c: (lambda v: f"{v:+.2f}") for c in ("vanilla minus alone (pts)", "low", "high")} | {
            "n": lambda v: f"{int(v)}", "margin": lambda v: f"{v:g}"}, status=None, device=None, max_rows=20,
        caption="The gate every comparison needs: vanilla KD (its α chosen on validation) minus the student alone, "
                "test accuracy paired over seeds, for every student the recipe trains (main MLP, the other widths, "
                "the convolutional student); the gate passes when the whole 95% interval is above the margin.")


def room_diagnosis_markdown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> str:
    """Why the main student's gate failed in an attempt, from the records: how far the cross-fitted teachers are
    above each student alone, or (a held-out teacher) how KD's room varies across the students. Empty while the
    gate passes or is undecided (nothing to explain)."""
    store = store or ResultStore()
    a = shown(profile, store, attempt)
    if not _no_room(profile, store, a):
        return ""
    if rc.cf_recipe(profile, a).teacher_logits == "heldout":
        return _heldout_diagnosis(profile, store, a)
    teachers, arms = report_cf.teachers_table(profile, store, a), report_cf.arms_table(profile, store, a)
    alone = arms[arms.arm == "alone"].set_index("student")["mean"] if not arms.empty else {}
    if teachers.empty or "main" not in alone:
        return ""
    test = teachers["test acc. (%)"]
    best = float(test.max())
    above = [f"{st} alone {acc:.2f}%" for st, acc in alone.items() if acc >= best]
    text = (f"**Why there is no room here (from the records).** The cross-fitted teachers reach "
            f"{' and '.join(f'{v:.2f}%' for v in test)} on the test set and {float(teachers['acc. out of fold (%)'].min()):.2f}"
            f"-{float(teachers['acc. out of fold (%)'].max()):.2f}% on the images they label out of fold, only "
            f"{best - float(alone['main']):.2f} pts above the main student alone ({float(alone['main']):.2f}%, mean "
            f"over seeds)")
    text += (f"; {', '.join(above)} is at or above the best teacher" if above else "") + ". "
    return text + ("Each teacher learns from half of the labelled images, so it is barely better than the students it "
                   "teaches, and its soft labels add little. The change of scale these records point to is a stronger "
                   "teacher whose logits stay out of sample: one trained on training images disjoint from the "
                   "student's labelled and validation images." + _narrower_note(profile, store, a))


def _heldout_diagnosis(profile: str, store: ResultStore, attempt: int) -> str:
    """The held-out attempt's failed gate: the teacher's accuracy, then every student's room from smallest to largest,
    and what the next attempt changes (named only where the recipe has a later attempt)."""
    teacher, room = report_cf.teachers_table(profile, store, attempt), report_cf.room_table(profile, store, attempt)
    if teacher.empty or room.empty:
        return ""
    r = rc.cf_recipe(profile, attempt)
    diff = room.set_index("student")["vanilla minus alone (pts)"].sort_values()
    main = "-".join(map(str, r.student_kwargs.get("hidden", [])))
    name = lambda st: f"MLP-{main} (main)" if st == "main" else (  # noqa: E731
        f"MLP-{st[4:]}" if st.startswith("cap:") else st.removeprefix("het:"))
    rooms = ", ".join(f"{name(st)} {d:+.2f}" for st, d in diff.items())
    on_students = float(teacher["acc. on the student's images (%)"].iloc[0])
    text = (f"**Why there is no room here (from the records).** The held-out teacher reaches "
            f"{float(teacher['test acc. (%)'].iloc[0]):.2f}% on the test set and "
            f"{on_students:.2f}% on the "
            f"student's {r.n_train:,} labelled images, which it never saw, yet vanilla KD's gain over the student alone "
            f"(test accuracy, mean over seeds, pts) stays small: {rooms}. ")
    widths = _room_by_width(diff, r)
    by_width = [widths[w] for w in sorted(widths)]
    if len(by_width) > 2 and all(x < y for x, y in zip(by_width, by_width[1:])):
        text += "Among the MLPs the gain rises with the width. "
    later = [b for b in sorted(rc.ATTEMPTS) if b > attempt]
    if later:
        nxt = rc.cf_recipe(profile, later[0])
        text += (f"Attempt {later[0]} ({rc.ATTEMPTS[later[0]][0]}) gives the student fewer labelled images "
                 f"({nxt.n_train:,}), where the soft labels can add more beyond the labels, and makes "
                 f"MLP-{'-'.join(map(str, nxt.student_kwargs.get('hidden', [])))} the main student: a scratch pilot "
                 "(three seeds, validation accuracy, not records; `recipe_cf.PILOT_FEWER_LABELS`) measured the largest "
                 "room there.")
    return text


def _room_by_width(diff: Mapping[str, float], r: rc.CrossFitRecipe) -> dict[int, float]:
    """MLP width -> KD room, from the room table's "vanilla minus alone" by student: the capacity widths ("cap:<w>")
    and the main student where it is a one-layer MLP."""
    hidden = r.student_kwargs.get("hidden") or []
    out = {int(st[4:]): float(d) for st, d in diff.items() if st.startswith("cap:") and st[4:].isdigit()}
    if len(hidden) == 1 and "main" in diff:
        out[int(hidden[0])] = float(diff["main"])
    return out


def _narrower_note(profile: str, store: ResultStore, attempt: int = 1) -> str:
    """" A narrower student does not help ..." when every narrower MLP width's gate difference is below the main
    width's (the room table's rows), else nothing."""
    room = report_cf.room_table(profile, store, attempt)
    if room.empty or "main" not in set(room.student):
        return ""
    diff = room.set_index("student")["vanilla minus alone (pts)"]
    main_width = rc.cf_recipe(profile, attempt).student_kwargs.get("hidden", [0])[-1]
    narrower = {w: d for w, d in _room_by_width(diff, rc.cf_recipe(profile, attempt)).items() if w < main_width}
    if not narrower or any(d >= diff["main"] for d in narrower.values()):
        return ""
    shown = ", ".join(f"width {w} {d:+.2f} pts" for w, d in sorted(narrower.items()))
    return (f" A narrower student does not help: its room is smaller still ({shown}, against {diff['main']:+.2f} pts "
            f"at width {main_width}).")


def teachers_view(profile: str, store: ResultStore | None = None, attempt: int | None = None):
    a = shown(profile, store, attempt)
    t = report_cf.teachers_table(profile, store, a)
    held = rc.cf_recipe(profile, a).teacher_logits == "heldout"
    if t.empty:
        return _not_yet("The held-out teacher's records" if held else "The cross-fitted teachers", profile)
    pct = lambda v: f"{v:.2f}"  # noqa: E731
    if held:
        cols = [c for c in t.columns if c.endswith("(%)")]
        return present.results_table(
            t, {c: c for c in t.columns},
            formats={"lr": lambda v: f"{v:g}", "epochs": lambda v: f"{int(v)}",
                     "pool images": lambda v: f"{int(v):,}"} | {c: pct for c in cols}, status=None, device=None,
            caption="The held-out teacher's accuracy on its own pool (its training accuracy), on the student's "
                    "labelled images (out of sample: the logits the students learn from), on validation and on "
                    "the test set.")
    return present.results_table(
        t, {"part": "part", "lr": "lr", "epochs": "epochs", "images fitted": "images trained on",
            "acc. own folds (%)": "training acc., own folds (%)", "images predicted out of fold": "images predicted",
            "acc. out of fold (%)": "acc. out of fold (%)", "test acc. (%)": "test acc. (%)"},
        formats={"lr": lambda v: f"{v:g}", "part": lambda v: f"{int(v)}", "epochs": lambda v: f"{int(v)}",
                 "images fitted": lambda v: f"{int(v):,}", "images predicted out of fold": lambda v: f"{int(v):,}",
                 "acc. own folds (%)": pct, "acc. out of fold (%)": pct, "test acc. (%)": pct},
        status=None, device=None,
        caption="Each part's accuracy on the images it trained on (its training accuracy), on the fold it "
                "predicts out of fold (the logits the students learn from there) and on the test set.")


def arms_view(profile: str, store: ResultStore | None = None, attempt: int | None = None):
    t = report_cf.arms_table(profile, store, shown(profile, store, attempt))
    if t.empty:
        return _not_yet("The final runs", profile)
    t = t.assign(arm=[_label(a) + (" ← chosen on validation" if c else "") for a, c in
                      zip(t.arm, t["chosen on validation"])],
                 accuracy=[present.fmt_mean_std(m, s, 2) for m, s in zip(t["mean"], t["std"])])
    return present.results_table(
        t, {"group": "group", "student": "student", "arm": "arm", "runs": "runs", "failed": "failed",
            "accuracy": "test acc. (%)"}, status=None, device=None, max_rows=60, wrap=["arm"],
        caption="Mean ± std over seeds of each arm's test accuracy (failed runs left out here; the verdicts score "
                "them at chance). The two controls: f_w fed a constant (one learned α for all samples, trained by "
                "the same hypergradient) and f_w frozen at its initialisation.")


def alpha_by_arm_view(profile: str, store: ResultStore | None = None, attempt: int | None = None):
    """The learned α of every f_w arm at the end of training (`report_cf.alpha_by_arm`), or a "not yet" line."""
    a = shown(profile, store, attempt)
    t = report_cf.alpha_by_arm(profile, store, a)
    if t.empty:
        return present.markdown(f"No f_w arm's final of profile `{profile}` is recorded (**not yet run**).")
    t = t.assign(arm=[_label(x) for x in t.arm],
                 **{"f_w rate": [("—" if r is None or r != r else f"{r:g}") for r in t["f_w rate"]],  # frozen: none
                    "mean α": t["mean α"].map(lambda v: f"{v:.3f}"),
                    "share α > 0.99": t["share α > 0.99"].map(lambda v: present.fmt_pct(v, 1)),
                    "test acc. (%)": t["test acc. (%)"].map(lambda v: f"{v:.2f}")})
    return present.results_table(
        t, {c: c for c in t.columns}, status=None, device=None, wrap=["arm"],
        caption="The learned α_i of every arm whose α comes from f_w, at the end of training, on the main student's "
                "training samples (mean over seeds; 'seeds mostly saturated': seeds where more than half of the α_i "
                "are above 0.99), with the arm's test accuracy. f_w's rate is each arm's own, chosen on validation; "
                "the frozen f_w is not trained.")


def alpha_caption(profile: str, store: ResultStore | None = None, arm: str = "tgeo_both",
                  attempt: int | None = None) -> str:
    """The alpha-over-training figure's caption, its numbers (final-epoch share above 0.99) from the records."""
    df = report_cf.alpha_epochs(profile, store, (arm,), shown(profile, store, attempt))
    text = ("The learned α_i = f_w(Δ_i) of every training sample at the end of each epoch of TGeo-KD (intra + "
            "inter), mean over seeds: left its mean, right the share of α_i above 0.99, for all samples and for "
            "the lowest- and highest-ST groups where the teacher is right (g1, g5) and wrong (g′1, g′5).")
    if df.empty:
        return text
    last = df[df.epoch == df.epoch.max()].groupby("group")["share_above_0.99"].mean()
    groups = last.drop("all", errors="ignore").dropna()
    text += (f" At the last epoch ({int(df.epoch.max())}, {df.seed.nunique()} seeds) "
             f"{present.fmt_pct(last.get('all', math.nan), 1)} of all α_i are above 0.99")
    if not groups.empty and groups.min() == groups.max():
        text += f", and {present.fmt_pct(groups.min(), 1)} in every group"
    elif not groups.empty:
        text += (f"; by group from {present.fmt_pct(groups.min(), 1)} ({groups.idxmin()}) to "
                 f"{present.fmt_pct(groups.max(), 1)} ({groups.idxmax()})")
    return text + "."


def power_markdown(profile: str, store: ResultStore | None = None, attempt: int | None = None) -> str:
    """The pre-registered power (seeds from the known paired SDs) and, once recorded, the finals' own paired SD
    of TGeo-KD minus vanilla KD and the difference it can detect."""
    from kdutils.chapters.tgeo.campaign import final_configs, resolved

    store = store or ResultStore()
    a = shown(profile, store, attempt)
    n_plan = len(rc.cf_recipe(profile, a).seeds)
    sds = (rc.RECORDED_PAIRED_SD, rc.ASSUMED_MAX_SD)
    planned = ", ".join(f"{100 * detectable_effect(sd, n_plan):.2f} pts at SD {100 * sd:.2f}" for sd in sds)
    out = (f"**Power.** Planned before the runs: {n_plan} seeds. The smallest difference they detect with "
           f"probability {POWER:g} (the paired two-sided {1 - ALPHA:.0%} interval excluding 0; exact noncentral t) "
           f"is {planned}: the first recipe's recorded paired SD of TGeo-KD minus vanilla KD, and an assumed larger "
           f"one. The pre-registered minimum effect is {100 * rc.MIN_EFFECT:.1f} pts.")
    res = resolved(profile, store, a)
    if res.teacher_lr is None or res.vanilla is None:
        return out
    fc = final_configs(profile, res, rc.teacher_config(profile, res.teacher_lr, a))
    s = claims_cf._scores({a: fc["main"][a] for a in ("tgeo_both", res.vanilla)}, store)
    keys = sorted(set(s["tgeo_both"]) & set(s[res.vanilla]))
    if len(keys) < 2:
        return out + (" The finals' own paired SD is not measured: TGeo-KD is not trained where KD has no room."
                      if _no_room(profile, store, a) else " The finals' own paired SD is not recorded yet.")
    d = np.array([s["tgeo_both"][k] - s[res.vanilla][k] for k in keys])
    sd = float(d.std(ddof=1))
    det = detectable_effect(sd, len(keys))
    verdict = "below" if det < 100 * rc.MIN_EFFECT else "not below"
    return out + (f" From the finals' observed paired SD, {sd:.2f} pts over {len(keys)} seeds, the detectable "
                  f"difference is {det:.2f} pts, {verdict} the minimum effect.")


def verdicts_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Every claim's verdict in full (rule, parts, evidence: where the boxes at the top link to) of the attempt
    that is the chapter's main result (`claims_cf.shown_attempt`); until one is, one "not yet run" sentence."""
    store = store or ResultStore()
    a = claims_cf.shown_attempt(profile, store)
    if a is None:
        return (f"No verdict yet: the recipe's main comparison is not recorded at profile `{profile}` "
                "(**not yet run**).")
    vs = claims_cf.cf_verdicts(profile, store, attempt=a)
    return "\n\n---\n\n".join(f"#### Claim {i}\n\n" + present.shorten_devices(v.to_markdown())
                              for i, v in enumerate(vs, 1))
