"""What the chapter trains at a profile, counted for the GPU script's time budget (`kdutils.gpu.workload`).

The counts come from the schedule's own list of runs (`plan.phase_jobs`, planned with each grid's first rate,
as its dry run does) at one and two seeds, so they follow the recipe: images x epochs per architecture and data
set, split into what every seed adds and what does not depend on the seeds.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.chapters.does_kd_work.plan import phase_jobs
from kdutils.chapters.does_kd_work.schedule import TOTAL_IMAGES, job_images
from kdutils.config import DataConfig, RunConfig
from kdutils.gpu.workload import ChapterWork, Work
from kdutils.store.profiles import check_profile, seed_cap
from kdutils.store.store import ResultStore

DATASETS = ("fashion_mnist", "mnist")  # what `run_all` trains by default


def _counts(profile: str, seeds: int) -> dict[tuple, list]:
    """{(dataset, model, widths, batch size): [image-epochs, runs, data config]} of every planned run."""
    out: dict[tuple, list] = {}
    with tempfile.TemporaryDirectory() as tmp, seed_cap(seeds):
        store = ResultStore(Path(tmp))  # nothing recorded: every run counts, with the grids' first rates
        version = dkw.latest(profile)
        for phase in (1, 2, 3):
            for job in phase_jobs(phase, profile, DATASETS, dkw.RUN_ORDER, version, store, planned=True):
                images, epochs = job_images(job)
                if isinstance(job, RunConfig):
                    data, model, batch = job.data, job.model, job.train.batch_size
                    widths = job.model_kwargs.get("widths")
                else:
                    data, model, widths, batch = job.teachers[0].data, job.student_model, job.widths, job.batch_size
                key = (data.dataset, model, None if widths is None else tuple(widths), batch)
                entry = out.setdefault(key, [0.0, 0, DataConfig(dataset=data.dataset, n_train=data.n_train,
                                                                n_test=data.n_test, val_size=data.val_size)])
                entry[0] += images * max(epochs, 1)
                entry[1] += 1
    return out


def gpu_work(profile: str = "gpu") -> ChapterWork:
    """What `run_all(profile)` trains, in epochs of each data set's training split per architecture (for the GPU
    script's time budget); the counts grow linearly with the seeds, so two seed counts give both parts."""
    r = dkw.recipe(check_profile(profile))
    one, two = _counts(profile, 1), _counts(profile, 2)
    works = []
    for key, (image_epochs_2, runs_2, data) in sorted(two.items(), key=lambda kv: str(kv[0])):
        dataset, model, widths, batch = key
        image_epochs_1, runs_1, _ = one.get(key, [0.0, 0, data])
        n = data.n_train or (TOTAL_IMAGES[dataset] - data.val_size)
        per_seed = (image_epochs_2 - image_epochs_1) / n
        works.append(Work(f"does_kd_work {model} {dataset} batch {batch}", model, data, batch,
                          fixed_epochs=max(0.0, image_epochs_1 / n - per_seed), epochs_per_seed=max(0.0, per_seed),
                          runs_fixed=max(0, 2 * runs_1 - runs_2), runs_per_seed=max(0, runs_2 - runs_1),
                          model_kwargs={} if widths is None else {"widths": widths}))
    return ChapterWork("does_kd_work", len(r.seeds), min(2, len(r.seeds)), tuple(works))


__all__ = ["gpu_work"]
