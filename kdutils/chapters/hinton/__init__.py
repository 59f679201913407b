"""Hinton, Vinyals & Dean (2015), distillation at a high temperature on MNIST: `plan` (recipes, configs,
runs), `claims` (the claim and its verdict rule), `report` (tables, figures, prose for the chapter's pages);
the paper's section 3 at its own scale (profile `paper`): `paper_plan` (its runs and records), `paper_rules`
(the pre-registered rules), `paper_claims` (its five verdicts), `paper_report` (its tables and figures).
"""
from kdutils.chapters.hinton import claims, paper_claims, plan
from kdutils.report.chapter import Chapter


def chapter_verdicts(profile: str, store=None) -> list:
    """The `paper` profile: section 3's five claims; every other profile: the main claim at that scale."""
    if profile == paper_claims.PROFILE:
        return paper_claims.paper_verdicts(store)
    return claims.chapter_verdicts(profile, store)


CHAPTER = Chapter(
    name="hinton", order=1, paper="Hinton, Vinyals & Dean (2015)", title="Distilling the Knowledge in a Neural Network",
    page="notebooks/hinton_report", pages=("notebooks/hinton_report", "notebooks/hinton_kd"),
    experiments=(plan.EXPERIMENT,), claims=(claims.CLAIM,), recipe=plan.recipe, run_all=plan.run_all,
    verdicts=chapter_verdicts, plan=plan.plan, point_configs=plan.point_configs, gpu_work=plan.gpu_work)
