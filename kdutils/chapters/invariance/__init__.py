"""Odagiu et al. (2024), does KD transfer a symmetry invariance: `recipes` (pairs, recipes, configs), `plan`
(lr selection, runs, extra metrics), `tables`, `figures`, `claims` (verdict rules), `collapse` (Figure 1's
tau = 1 claim), `report` (prose), plus `modelnet_demo` and `pictures` (the data page's pictures). Recipe v2
(issue 24): `recipe_v2`, `plan_v2`, `cost_v2`, `run_v2` (its CLI and dry run).
"""
from kdutils.chapters.invariance import claims, collapse, plan, recipes
from kdutils.report.chapter import Chapter

CHAPTER = Chapter(
    name="invariance", order=2, paper="Odagiu et al. (2024)",
    title="Knowledge Distillation for Teaching Symmetry Invariances",
    page="notebooks/invariance_report",
    pages=("notebooks/invariance_report", "notebooks/invariance_data", "notebooks/invariance_mnist",
           "notebooks/invariance_setmnist_dgcnn", "notebooks/invariance_setmnist_deepsets",
           "notebooks/invariance_modelnet_demo"),
    experiments=tuple(recipes.experiment_name(p) for p in recipes.PAIRS), claims=tuple(claims.CLAIMS.values()) + (collapse.TEXT,),
    recipe=recipes.recipe, run_all=plan.run_all, verdicts=collapse.chapter_verdicts, plan=plan.configs,
    point_configs=plan.point_configs, gpu_work=plan.gpu_work)
