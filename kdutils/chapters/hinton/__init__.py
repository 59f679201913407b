"""Hinton, Vinyals & Dean (2015), distillation at a high temperature on MNIST: `plan` (recipes, configs, runs),
`claims` (the main claim declared with the shared rules, judged at the quick profiles), `report` (tables, figures,
prose for the chapter's pages); the paper's section 3 at its own scale (profile `paper`), the chapter's main
result: `paper_plan` (its runs and records), `paper_rules` (its constants, the learning-curve gate, bias shifts),
`paper_claims` (its five claims and their verdicts), `paper_report` (its tables and figures).
"""
from kdutils.chapters.hinton import claims, paper_claims, plan
from kdutils.report.chapter import Chapter

#: the roles of the paper profile's final runs (selection runs are "select:<arm>")
_FINAL_ROLES = ("teacher", "student", "distilled", "transfer-no3", "transfer-only78")


def chapter_verdicts(profile: str, store=None) -> list:
    """The chapter's main result, the paper-scale verdicts (section 3's five claims, from the `paper` records
    whatever the book's profile), then the quick recipe's check of the main claim at `profile` (at `cpu` when the
    profile is `paper` itself), not counted. RuntimeError when `paper` final runs are on disk but none is found:
    a lost key must not hide behind "not yet run" (the scorecard's own guard sees the quick verdict only)."""
    from kdutils.store.store import ResultStore

    store = store if store is not None else ResultStore()
    recs = paper_claims.paper_records(store)
    if paper_claims.records_found(recs) == 0:
        on_disk = [r for r in store.records(plan.EXPERIMENT) if r.get("config", {}).get("profile") == "paper"
                   and r.get("config", {}).get("role") in _FINAL_ROLES]
        if on_disk:
            raise RuntimeError(f"hinton: {len(on_disk)} final run(s) of profile 'paper' are recorded in "
                               f"results/{plan.EXPERIMENT}/ but paper_plan finds none of them (a changed key or a "
                               "lost selection record?)")
    quick = claims.chapter_verdicts("cpu" if profile == paper_claims.PROFILE else profile, store)
    return [paper_claims.main_verdict(recs), *paper_claims.temperature_verdicts(recs),
            *paper_claims.transfer_verdicts(recs), *quick]


CHAPTER = Chapter(
    name="hinton", order=1, paper="Hinton, Vinyals & Dean (2015)", title="Distilling the Knowledge in a Neural Network",
    page="notebooks/hinton_report", pages=("notebooks/hinton_report", "notebooks/hinton_kd"),
    experiments=(plan.EXPERIMENT,), claims=(*paper_claims.CLAIMS.values(), claims.QUICK_TEXT), recipe=plan.recipe,
    run_all=plan.run_all, verdicts=chapter_verdicts, plan=plan.plan, point_configs=plan.point_configs,
    gpu_work=plan.gpu_work)
