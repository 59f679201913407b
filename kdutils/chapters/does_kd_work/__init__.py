"""Stanton et al. (2021), does KD really work: `recipes` (versioned scales), `plan` (specs, selections, run
order), `schedule` (phases, two-process shards, cost estimate, dry run), `run` (the chapter's run function and
baseline evaluations), `tables`, `claims`, `report` (tables, prose), `figures`, and the tools `interpolation`,
`ensemble`, `policies`, `evaluate` (fidelity metrics).
"""
from kdutils.chapters.does_kd_work import claims, plan, schedule, workload
from kdutils.report.chapter import Chapter

CHAPTER = Chapter(
    name="does_kd_work", order=5, paper="Stanton et al. (2021)", title="Does Knowledge Distillation Really Work?",
    page="notebooks/does_kd_work_report",
    pages=("book/does_kd_work", "notebooks/does_kd_work_report", "notebooks/does_kd_work_point"),
    experiments=(plan.EXPERIMENT,), claims=tuple(claims.CLAIM_TEXT.values()), recipe=plan.recipe,
    run_all=schedule.run_all, verdicts=claims.chapter_verdicts, plan=plan.plan, gpu_work=workload.gpu_work)
