"""The TGeo-KD chapter page (notebooks/tgeo_report.ipynb): its prose, tables and figures, read from the
records only (`kdutils.chapters.tgeo.plan`); nothing here trains. A profile with no records renders
"not yet run" instead of failing."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kdutils.chapters.tgeo import plan as tgeo, claims
from kdutils.report import present
from kdutils.store.store import ResultStore

GROUPS_RIGHT = [f"g{k}" for k in range(1, 6)]
GROUPS_WRONG = [f"g'{k}" for k in range(1, 6)]

#: The paper's ImageNet ResNet-34 -> ResNet-18 top-1 accuracies (Table 2), the one table of the poster whose
#: every row is legible; starred rows are means of 5 runs with their std.
PAPER_IMAGENET = {"teacher": "73.31", "alone": "69.75", "vanilla": "70.67", "anl": "71.83 ± 0.22",
                  "ada": "71.96 ± 0.17", "wls": "72.04", "rw": "70.62 ± 0.22", "tgeo_both": "72.89 ± 0.15"}


def _plan(profile: str, store: ResultStore | None):
    store = store or ResultStore()
    return store, tgeo.plan(profile, store)


def header_markdown() -> str:
    p = tgeo.PAPER
    return (f"**Paper.** *{p['title']}*. {p['authors']}. {p['venue']}; "
            f"[arXiv:{p['arxiv']}]({p['url']}), [OpenReview]({p['openreview']}).")


def protocol_markdown(profile: str) -> str:
    r = tgeo.recipe(profile)
    return (f"**Scale (`{profile}`).** Fashion-MNIST: {r.n_train:,} training images drawn from the 60,000 after "
            f"holding out {r.val_size:,} validation images (f_w's outer objective and every arm's learning-rate "
            f"selection; never the test set), the {'whole' if r.n_test is None else f'{r.n_test:,}-image'} test "
            f"set for the numbers. Teacher: {r.teacher} (a CIFAR-style ResNet), SGD with momentum and a cosine "
            f"rate, {r.teacher_epochs} epochs, rate chosen from {list(r.teacher_lrs)} by validation accuracy "
            f"after {r.select_teacher_epochs} epochs. Students: an MLP with one hidden layer of "
            f"{r.student_kwargs.get('hidden')} units, {r.student_epochs} epochs, batch {r.batch_size}, "
            f"tau = {r.tau:g}, KD term tau² KL(teacher ‖ student); each arm's rate chosen from "
            f"{list(r.student_lrs)} on the validation split, then {len(r.seeds)} seeds ({', '.join(map(str, r.seeds))}). "
            f"f_w: Adam, lr {r.fusion_lr:g}; RW-KD's per-sample weights: Adam, lr {r.rw_lr:g}. "
            f"Motivation experiment: {r.motivation_pre_epochs} epochs at alpha 0.5, then "
            f"{r.motivation_epochs} more epochs at each alpha, per seed. {r.notes}.")


def arms_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Mean ± std over seeds of each arm's test metrics (rows in the chapter's order) and the paper's value."""
    store, p = _plan(profile, store)
    table = tgeo.results_table(profile, store, p)
    if table.empty:
        return table
    t = table.copy()
    for c in ("accuracy", "agreement", "val accuracy", "ECE"):
        t[c] = 100 * t[c]
    digits = {"accuracy": 2, "NLL": 3, "ECE": 2, "agreement": 2, "val accuracy": 2}
    rows = []
    for arm, d in t.groupby("arm", sort=False):
        row = {"arm": arm, "runs": len(d)}
        for c, k in digits.items():
            row[c] = present.fmt_series_mean_std(d[c], k)
        bad = d.status[d.status != "ok"]
        row["status"] = ", ".join(f"{n} {s}" for s, n in bad.value_counts().items()) or "ok"
        rows.append(row)
    agg = pd.DataFrame(rows)
    order = {a: i for i, a in enumerate(["teacher", *tgeo.ARMS])}
    agg = agg.sort_values("arm", key=lambda s: s.map(order)).reset_index(drop=True)
    vbest = p.vanilla_best()
    agg["paper"] = [PAPER_IMAGENET.get("vanilla" if a == vbest else a, "") for a in agg.arm]
    agg["arm"] = [tgeo.ARM_LABELS.get(a, a) + (" ← chosen on validation" if a == vbest else "") for a in agg.arm]
    return agg


def arms_view(profile: str, store: ResultStore | None = None):
    agg = arms_table(profile, store)
    if agg.empty:
        return present.markdown(f"No final run of profile `{profile}` is recorded yet (**not yet run**).")
    cols = {"arm": "arm", "accuracy": "test acc. (%)", "NLL": "test NLL", "ECE": "test ECE (%)",
            "agreement": "agreement (%)", "val accuracy": "val acc. (%)", "runs": "runs",
            "paper": "paper (%)"}
    return present.results_table(agg, {k: v for k, v in cols.items() if k in agg}, wrap=["arm", "paper"],
                                 device=None,
                                 caption="Mean ± std over seeds; agreement: top-1 agreement with the teacher on the "
                                         "test set. Paper: the poster's ImageNet ResNet-34 → ResNet-18 top-1 "
                                         "(another dataset and scale: context, not a target).")


def headline_markdown(profile: str, store: ResultStore | None = None) -> str:
    store, p = _plan(profile, store)
    table = tgeo.results_table(profile, store, p)
    if table.empty or not {"teacher", "alone", tgeo.METHOD_ARM} <= set(table.arm):
        return "The headline numbers appear once the teacher, the student alone and TGeo-KD are recorded."

    def mean(arm: str) -> float:
        return 100 * float(table[table.arm == arm].accuracy.mean())
    vbest = p.vanilla_best()
    out = (f"Ours (`{profile}`, Fashion-MNIST): teacher {mean('teacher'):.2f}%, student alone {mean('alone'):.2f}%, "
           f"TGeo-KD {mean(tgeo.METHOD_ARM):.2f}% test accuracy (means over seeds)")
    if vbest and vbest in set(table.arm):
        out += f", vanilla KD at the validation-chosen α={tgeo.ARMS[vbest].alpha:g} {mean(vbest):.2f}%"
    return out + (". Paper (ImageNet, ResNet-34 → ResNet-18): teacher 73.31%, student 69.75%, vanilla KD 70.67%, "
                  "TGeo-KD 72.89%; on HIL (12-layer → 4-layer BERT) vanilla KD 87.55% and TGeo-KD 92.39%.")


def selection_view(profile: str, store: ResultStore | None = None):
    store, p = _plan(profile, store)
    t = tgeo.selection_table(profile, store, p)
    if t.empty:
        return present.markdown("No selection run is recorded yet (**not yet run**).")
    t = t.copy()
    t["arm"] = [tgeo.ARM_LABELS.get(a, a) for a in t.arm]
    t["val_accuracy"] = 100 * t["val_accuracy"]
    t["chosen"] = ["✔" if c else "" for c in t.chosen]
    return present.results_table(t, {"arm": "arm", "lr": "lr", "epochs": "epochs", "val_accuracy": "val accuracy (%)",
                                     "val_nll": "val NLL", "chosen": "chosen"},
                                 formats={"lr": lambda v: f"{v:g}", "val_accuracy": lambda v: f"{v:.2f}"},
                                 max_rows=60, device=None,
                                 caption="Every candidate learning rate of every arm, trained on the training split "
                                         "(seed 0) and scored on the held-out validation split.")


def selection_markdown(profile: str, store: ResultStore | None = None) -> str:
    store, p = _plan(profile, store)
    sels = {"teacher": p.teacher_selection, **p.selections}
    done = {a: s for a, s in sels.items() if s is not None}
    if not done:
        return ""
    r = tgeo.recipe(profile)
    def at_edge(a: str, s) -> bool:
        grid = r.teacher_lrs if a == "teacher" else r.student_lrs
        return len(grid) > 1 and s.lr in (min(grid), max(grid))
    edge = [tgeo.ARM_LABELS.get(a, a) for a, s in done.items() if at_edge(a, s)]
    vbest = p.vanilla_best()
    txt = "Chosen rates: " + "; ".join(f"{tgeo.ARM_LABELS.get(a, a)} {s.lr:g}" for a, s in done.items()) + "."
    if vbest:
        txt += (f" Vanilla KD's α is chosen the same way: the α whose chosen candidate has the best validation "
                f"accuracy is **α = {tgeo.ARMS[vbest].alpha:g}**; that arm is \"vanilla KD\" in the verdict.")
    if edge:
        txt += (f" At an edge of its grid (the best rate may lie outside it; not widened for lack of time): "
                f"{', '.join(edge)}.")
    return txt


# ---- figures -----------------------------------------------------------------------------------------------

def heatmap_figure(profile: str, store: ResultStore | None = None, where: str = "train"):
    """The poster's Step 6 heatmaps: accuracy (%) of each continued student (columns: alpha) on each group
    (rows: g1..g5 teacher right, g'1..g'5 teacher wrong, ascending ST), mean over seeds."""
    store, p = _plan(profile, store)
    cells = tgeo.motivation_cells(profile, store, p, where=where)
    if cells.empty:
        return None
    mean = cells.groupby(["group", "alpha"]).accuracy.mean().unstack()
    n = cells.seed.nunique()
    fig, axes = present.page_figure(2, panel_height=3.0)
    for ax, rows, title in ((axes[0], GROUPS_RIGHT, "teacher right (D)"), (axes[1], GROUPS_WRONG,
                                                                          "teacher wrong (D')")):
        m = mean.loc[[g for g in rows if g in mean.index]]
        # each row relative to its own mean, so the best alpha per group stands out; the cells print the level
        rel = m.sub(m.mean(axis=1), axis=0)
        lim = max(float(np.abs(rel.values).max()), 1e-9)
        ax.imshow(rel.values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(m.shape[1]), [f"{a:g}" for a in m.columns])
        ax.set_yticks(range(m.shape[0]), list(m.index))
        for i in range(m.shape[0]):
            best = int(np.argmax(m.values[i]))
            for j in range(m.shape[1]):
                strong = abs(rel.values[i, j]) > 0.6 * lim
                ax.text(j, i, f"{m.values[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if strong else "black", fontweight="bold" if j == best else "normal")
        ax.set_xlabel("alpha (weight on the KD term)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("group (ascending ST)")
    fig.suptitle(f"{'training' if where == 'train' else 'held-out validation'} samples, mean of {n} seeds",
                 fontsize=10)
    return fig


def motivation_table(profile: str, store: ResultStore | None = None):
    store, p = _plan(profile, store)
    cells = tgeo.motivation_cells(profile, store, p)
    if cells.empty:
        return None
    st = claims.motivation_statistics(cells)
    cols = {"seed": "seed", "trend_right": "trend of slopes over g1..g5 (claim: > 0)",
            "slope_wrong": "mean slope on g'1..g'5 (claim: < 0)"}
    return present.results_table(st, cols, device=None, digits=2, status=None,
                                 caption="Per seed: slope of a group's accuracy (pp) against alpha, summarised as the "
                                         "claim-1 statistics.")


def _group_frame(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    store, p = _plan(profile, store)
    rows = []
    for item in tgeo.tgeo_alpha_records(profile, store, p):
        t = item["record"].get("tgeo")
        if not t:
            continue
        for g, d in t["groups"].items():
            rows.append({"arm": item["arm"], "seed": item["seed"], "group": g, **{k: v for k, v in d.items()
                                                                                  if k != "hist"},
                         "hist": d["hist"]})
    return pd.DataFrame(rows)


def alpha_group_figure(profile: str, store: ResultStore | None = None):
    """Learned alpha_i by group: median and quartiles (mean over seeds) per TGeo arm; histograms of TGeo-KD
    (intra + inter) alpha_i, teacher right vs wrong; ST vs alpha_i scatter of one seed."""
    store, p = _plan(profile, store)
    g = _group_frame(profile, store)
    if g.empty:
        return None
    fig, axes = present.page_figure(3, panel_height=2.8)
    order = GROUPS_RIGHT + GROUPS_WRONG
    x = np.arange(len(order))
    arms = [a for a in tgeo.FEATURE_ARMS if a in set(g.arm)]
    for k, arm in enumerate(arms):
        m = g[g.arm == arm].groupby("group")[["q25", "median", "q75"]].mean().reindex(order)
        off = (k - (len(arms) - 1) / 2) * 0.22
        axes[0].errorbar(x + off, m["median"], yerr=[m["median"] - m["q25"], m["q75"] - m["median"]], fmt="o",
                         ms=3, capsize=2, label=tgeo.ARM_LABELS[arm])
    axes[0].axvline(4.5, color="grey", lw=0.8, ls=":")
    axes[0].set_xticks(x, order, fontsize=7, rotation=90)
    axes[0].set_ylabel("learned alpha_i")
    axes[0].set_title("median, quartiles by group", fontsize=9)
    both = g[g.arm == tgeo.METHOD_ARM]
    if not both.empty:
        edges = np.linspace(0, 1, len(both["hist"].iloc[0]) + 1)
        for groups, label, color in ((GROUPS_RIGHT, "teacher right", "tab:blue"),
                                     (GROUPS_WRONG, "teacher wrong", "tab:red")):
            h = np.sum([np.array(v) for v in both[both.group.isin(groups)]["hist"]], axis=0).astype(float)
            if h.sum() > 0:
                h = h / h.sum()
            axes[1].stairs(h, edges, label=label, color=color)
        axes[1].set_xlabel("learned alpha_i")
        axes[1].set_ylabel("share of samples")
        axes[1].set_title("TGeo-KD (intra + inter), all seeds", fontsize=9)
        recs = [it for it in tgeo.tgeo_alpha_records(profile, store, p, arms=(tgeo.METHOD_ARM,))
                if it["record"].get("tgeo")]
        if recs:
            sc = recs[0]["record"]["tgeo"]["scatter"]
            right = np.array(sc["teacher_right"])
            st, al = np.array(sc["st"]), np.array(sc["alpha"])
            axes[2].scatter(st[right], al[right], s=5, alpha=0.5, color="tab:blue", label="teacher right")
            axes[2].scatter(st[~right], al[~right], s=7, alpha=0.7, color="tab:red", label="teacher wrong")
            axes[2].set_xlabel("ST distance")
            axes[2].set_ylabel("learned alpha_i")
            axes[2].set_title(f"seed {recs[0]['seed']}, sampled points", fontsize=9)
    present.shared_legend(fig, ncol=3)
    return fig


def alpha_table(profile: str, store: ResultStore | None = None):
    store, p = _plan(profile, store)
    g = _group_frame(profile, store)
    if g.empty:
        return None
    order = GROUPS_RIGHT + GROUPS_WRONG
    both = g[g.arm == tgeo.METHOD_ARM].drop(columns=["hist"])
    if both.empty:
        return None
    agg = both.groupby("group")[["n", "st_mean", "mean", "q25", "median", "q75"]].mean().reindex(order).reset_index()
    return present.results_table(agg, {"group": "group", "n": "samples per seed", "st_mean": "mean ST",
                                       "mean": "mean alpha_i", "q25": "q25", "median": "median", "q75": "q75"},
                                 device=None, status=None, digits=3, formats={"n": lambda v: f"{v:.0f}"},
                                 caption="TGeo-KD (intra + inter): learned alpha_i of the training samples by "
                                         "group, means over seeds of each seed's statistic.")


def fw_markdown(profile: str, store: ResultStore | None = None) -> str:
    store, p = _plan(profile, store)
    parts = []
    for arm in tgeo.FEATURE_ARMS:
        st = claims.alpha_statistics(profile, store, p, arm)
        if st.empty or "fw_relative_change" not in st:
            continue
        ok = st[st.status == "ok"]
        if ok.empty:
            continue
        parts.append(f"{tgeo.ARM_LABELS[arm]}: f_w's parameters moved by {100 * ok.fw_relative_change.min():.0f}-"
                     f"{100 * ok.fw_relative_change.max():.0f}% of their initial norm; alpha_i std over the "
                     f"training samples {ok.alpha_std.mean():.3f}, 5-95% range [{ok.alpha_q05.mean():.3f}, "
                     f"{ok.alpha_q95.mean():.3f}] (means over {len(ok)} seeds)")
    if not parts:
        return "No TGeo-KD run is recorded yet (**not yet run**)."
    return "**Does f_w train, and does alpha_i vary?** " + "; ".join(parts) + "."


def bench_markdown(profile: str, store: ResultStore | None = None) -> str:
    store = store or ResultStore()
    rec = store.get(tgeo.bench_config(profile))
    if rec is None:
        return "The step benchmark is **not yet run** at this profile."
    m = rec["metrics"]
    dev = present.short_device(rec.get("provenance", {}).get("device"))
    return (f"**Cost of the bilevel step** (MLP student, batch {tgeo.recipe(profile).batch_size}, {dev}): a plain KD "
            f"step takes {1e3 * m['plain_kd_s']:.2f} ms, a TGeo-KD step without the outer update "
            f"{1e3 * m['tgeo_student_only_s']:.2f} ms, and a full bilevel step (virtual step with create_graph, "
            f"validation forward through θ′, second-order backward to f_w, then the student's step) "
            f"{1e3 * m['tgeo_bilevel_s']:.2f} ms: **{m['ratio_bilevel_over_plain']:.1f}×** a plain KD step.")


def wall_markdown(profile: str, store: ResultStore | None = None) -> str:
    store = store or ResultStore()
    recs = [r for r in store.records(tgeo.EXPERIMENT) if r["config"]["profile"] == profile]
    if not recs:
        return ""
    total = sum(float(r.get("wall_time_s") or 0) for r in recs)
    devices = sorted({present.short_device(r.get("provenance", {}).get("device")) for r in recs})
    return (f"All {len(recs)} recorded runs of profile `{profile}` (selection, teacher, final runs, motivation, "
            f"benchmark) took {total / 60:.1f} minutes of training and evaluation in all, on {', '.join(devices)}.")


def verdicts_markdown(profile: str, store: ResultStore | None = None) -> str:
    vs = claims.first_recipe_verdicts(profile, store)
    return "\n\n---\n\n".join(f"#### First recipe, claim {i}\n\n" + present.shorten_devices(v.to_markdown())
                              for i, v in enumerate(vs, 1))


def deviations_markdown(profile: str) -> str:
    r = tgeo.recipe(profile)
    return "\n".join([
        "- **Data and models.** CIFAR-100, ImageNet, HIL and Criteo are not used here; Fashion-MNIST with a "
        f"{r.teacher} teacher and an MLP student stands in (`dataset='cifar100'` gives the paper's ResNet-56 → "
        "ResNet-20 pair). Far fewer epochs than the paper's 240.",
        "- **The hypergradient is our choice.** The paper does not say how its bilevel problem is solved. We use a "
        "one-step unrolled hypergradient (DARTS / Meta-Weight-Net style): θ′ = θ − η ∇θ L_train(θ, w) with the "
        "graph kept, the validation cross-entropy at θ′ differentiated with respect to w (checked against "
        "central finite differences in float64 by the tests), one f_w step then one student step per batch.",
        "- **The released code never trains f_w.** In the authors' repository the validation loss has no graph "
        "path to the fusion-ratio network (α is computed under no_grad and the current student's validation "
        "loss is backpropagated), so f_w's gradients are None and α stays that of a randomly initialised net; "
        "the older CIFAR code has no bilevel step at all. Ours trains f_w (see the evidence under claim 3).",
        "- **f_w's input.** The poster's Δ_i: edges G−S, G−T, T−S and vertices S, T, G (intra), the same with the "
        "teacher's class mean T̄ (inter), concatenated for TGeo-KD (both); the released code squares the edges "
        "and stacks them differently.",
        "- **Baselines** follow the research notes' formulas: ANL annealed 1 → 0 over the epochs; ADA "
        "max(0, p_t(y) − (1 − p_t(y))/(K − 1)); WLS 1 − exp(−CE_s/CE_t) used as a convex ratio (as TGeo's "
        "comparison does, not WLS's own additive loss); RW a free per-sample weight trained on the training "
        "loss, clamped to [0, 1] (the released code has no clamp, so its weights leave [0, 1]).",
        "- **Motivation experiment.** Groups are cut from the alpha = 0.5 student of Step 2 and the "
        "accuracies measured on the training samples themselves, as on the poster; the same heatmap on the "
        "held-out validation samples is shown beside it. Our continued training is "
        f"{r.motivation_epochs} epochs, not the poster's (unstated) length, and uses alphas 0.1 … 0.9.",
        "- **Selection.** Every arm's learning rate (and vanilla KD's α) is chosen on the validation split; the "
        "paper reports the best of its runs on the test set for the baselines it copies from other papers.",
        "- **f_w's optimiser** is Adam with lr " + f"{r.fusion_lr:g}" + ", not tuned (the released HIL code uses "
        "Adam lr 0.1 with weight decay 0.05 on a full batch).",
    ])


def scales_markdown() -> str:
    rows = []
    for name, r in tgeo.RECIPES.items():
        rows.append(f"| `{name}` | {'all' if r.n_train is None else f'{r.n_train:,}'} | {r.teacher} | "
                    f"MLP {r.student_kwargs.get('hidden')} | {r.teacher_epochs} / {r.student_epochs} | "
                    f"{len(r.seeds)} | {r.notes} |")
    return ("| profile | training images | teacher | student | epochs (teacher / student) | seeds | notes |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows))


__all__ = ["alpha_group_figure", "alpha_table", "arms_table", "arms_view", "bench_markdown", "deviations_markdown",
           "fw_markdown", "header_markdown", "headline_markdown", "heatmap_figure", "motivation_table",
           "protocol_markdown", "scales_markdown", "selection_markdown", "selection_view", "verdicts_markdown",
           "wall_markdown"]
