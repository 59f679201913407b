"""Chandrasegaran et al. (2022), label smoothing and KD: `plan` (recipes, configs, runs), `analysis` (analyses
that need checkpoints), `claims`, `tables`, `figures`, `report` (prose), and the measures `diffusion`,
`semantic_groups`, `projection` (penultimate-layer projections), `target_entropy`. Recipe v3 (issue 22):
`recipe_v3`, `plan_v3`, `run_v3`, `claims_v3`, `report_v3`, `page_v3`; `verdicts` says whose verdicts count.
"""
from kdutils.chapters.ls_kd import plan, recipes, verdicts
from kdutils.report.chapter import Chapter

CHAPTER = Chapter(
    name="ls_kd", order=4, paper="Chandrasegaran et al. (2022)",
    title="Revisiting Label Smoothing and Knowledge Distillation Compatibility: What was Missing?",
    page="notebooks/ls_kd_report", pages=("book/ls_kd", "notebooks/ls_kd_report", "notebooks/ls_kd_point"),
    experiments=(recipes.EXPERIMENT, recipes.ANALYSIS), claims=verdicts.CLAIMS_V3, recipe=recipes.recipe,
    run_all=plan.run_all, verdicts=verdicts.chapter_verdicts, plan=plan.plan, point_configs=plan.point_configs,
    gpu_work=plan.gpu_work)
