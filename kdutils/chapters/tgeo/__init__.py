"""Hu, Wu et al. (ICLR 2024), TGeo-KD's sample-wise fusion ratio: `plan`, `claims`, `report`, and the method's
parts: `geometry` (Delta_i), `fusion_net` (f_w), `objective`, `bilevel`, `training`, `baselines`, `motivation`,
`arms` (one entry per arm), `runs` (the chapter's run function), `bench` (bilevel step cost). The second,
cross-fitted recipe: `spec` (the arm spec in the record key), `crossfit` (attempt 1's out-of-fold teachers),
`heldout` (attempt 2's teacher, on a pool disjoint from the student's images), `recipe_cf` (recipe and attempts,
arms, power), `campaign` (stages, two processes, dry run), `gate` (each student's KD-room gate, read
before the finals' expensive arms are spent), `claims_cf` (its verdicts), `report_cf` (its tables and the
alpha-over-training figure), `page_cf` (its section of the page); `verdicts`: which recipe's verdicts the
chapter shows (the newest attempt of the cross-fitted one whose main result is decided).
"""
from kdutils.chapters.tgeo import claims, plan, verdicts
from kdutils.report.chapter import Chapter

CHAPTER = Chapter(
    name="tgeo", order=3, paper="Hu, Wu et al. (2024)",
    title="Less or More From Teacher: Exploiting Trilateral Geometry for Knowledge Distillation",
    page="notebooks/tgeo_report", pages=("book/tgeo", "notebooks/tgeo_report", "notebooks/tgeo_point"),
    experiments=(plan.EXPERIMENT,), claims=tuple(claims.CLAIMS), recipe=plan.recipe, run_all=plan.run_all,
    verdicts=verdicts.chapter_verdicts, plan=plan.plan, gpu_work=plan.gpu_work)
