"""kdutils.bench.report: the benchmarks page's numbers come from the records."""
import json

from kdutils.bench import report as bench_report


def _record(task="mlp", fast=1.64, together=0.89, threads=1):
    return {"task": task, "k": 4, "threads": threads, "gpu_targets": {"fast_vs_reference": 5.0, "together_vs_sequential": 3.0},
            "ratios": {"fast_vs_reference": fast, "fast_vs_reference_whole_run_with_cache": 1.6,
                       "together_vs_sequential": together},
            "provenance": {"device": f"cpu: x86_64, {threads} threads", "commit": "0123456789abcdef"},
            "rows": [{"name": "reference", "samples_per_s": 5452.7}]}


def test_prose_quotes_the_records(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "mlp-cpu.json").write_text(json.dumps(_record()))
    records = bench_report.load_records(tmp_path)
    text = bench_report.prose(records)
    assert "measured on CPU (1 thread), one process per task" in text
    assert "1.6× the reference" in text and "0.89× the speed of 4 in sequence" in text
    assert "2 cores" not in text


def test_no_records_says_so():
    assert "No benchmark is recorded yet" in bench_report.prose([])


def test_ratio_table_has_targets_beside_measurements():
    t = bench_report.ratios_frame([_record()])
    row = t[t.ratio == "fast path / reference"].iloc[0]
    assert (row.measured, row.target, row.commit) == (1.64, 5.0, "0123456789")
    assert t[t.ratio.str.contains("charged")].target.isna().all()  # no target set for that ratio
