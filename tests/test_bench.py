"""The benchmark command at a tiny size: it prints samples/s and ratios and records them with provenance."""
import json

import torch

from kdutils.bench import run as bench


def test_tiny_bench_prints_ratios_and_writes_a_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path))
    threads = torch.get_num_threads()
    try:
        code = bench.main(["--task", "mlp", "--device", "cpu", "--steps", "3", "--warmup", "1", "--batch-size", "16",
                           "--data", "random", "--threads", "1", "--record", "-k", "2"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0
    assert "ratio fast path / reference:" in out and "ratio 2 together / 2 in sequence:" in out
    assert "reference (DataLoader" in out and "random uint8 images" in out
    record = json.loads((tmp_path / "bench" / "mlp-cpu.json").read_text())
    assert record["task"] == "mlp" and record["k"] == 2 and record["batch_size"] == 16
    # 3 steps of 16; 2 students; on CPU the auto engine is the sequence, and the loop engine is timed beside it
    assert [r["samples"] for r in record["rows"]] == [48, 48, 96, 96, 96]
    assert record["engine"] == "sequence" and "loop engine, for comparison" in record["rows"][4]["name"]
    loop = record["rows"][2]["seconds"] / record["rows"][4]["seconds"]
    assert abs(record["ratios"]["loop_together_vs_sequential"] - loop) < 1e-9
    # 3 interleaved rounds by default on CPU: each variant's row is the median of its own three timings
    rounds = record["round_seconds"]
    assert record["rounds"] == 3 and sorted(rounds) == ["loop engine", "separate fits", "sequence engine"]
    assert all(len(v) == 3 for v in rounds.values())
    assert record["rows"][2]["seconds"] == sorted(rounds["separate fits"])[1]
    assert record["rows"][3]["seconds"] == sorted(rounds["sequence engine"])[1]
    for r in record["rows"]:
        assert r["samples_per_s"] > 0 and abs(r["samples_per_s"] * r["seconds"] - r["samples"]) < 1e-6 * r["samples"]
    fast, ref = record["rows"][1]["samples_per_s"], record["rows"][0]["samples_per_s"]
    assert abs(record["ratios"]["fast_vs_reference"] - fast / ref) < 1e-9
    assert abs(record["ratios"]["together_vs_sequential"] - record["rows"][2]["seconds"] / record["rows"][3]["seconds"]) < 1e-9
    assert record["provenance"]["device"].startswith("cpu") and record["provenance"]["torch"] == torch.__version__


def test_bench_arguments_are_checked(capsys):
    import pytest

    with pytest.raises(SystemExit):
        bench.main(["--task", "imagenet"])
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
    with pytest.raises(ValueError, match="unknown data 'cifar'"):
        bench.load_images("cifar", 4)
