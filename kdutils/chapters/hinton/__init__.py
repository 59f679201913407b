"""Hinton, Vinyals & Dean (2015), distillation at a high temperature on MNIST: `plan` (recipes, configs,
runs), `claims` (the claim and its verdict rule), `report` (tables, figures, prose for the chapter's pages).
"""
from kdutils.chapters.hinton import claims, plan
from kdutils.report.chapter import Chapter

CHAPTER = Chapter(
    name="hinton", order=1, paper="Hinton, Vinyals & Dean (2015)", title="Distilling the Knowledge in a Neural Network",
    page="notebooks/hinton_report", pages=("notebooks/hinton_report", "notebooks/hinton_kd"),
    experiments=(plan.EXPERIMENT,), claims=(claims.CLAIM,), recipe=plan.recipe, run_all=plan.run_all,
    verdicts=claims.chapter_verdicts, plan=plan.plan, point_configs=plan.point_configs)
