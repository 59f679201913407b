"""The one `--shard K/N` convention (counted from 1) and the shared dry-run cost model: parsing, the old spellings
as aliases that select exactly the work they selected before, in every chapter's command, and the medians, the
deal and the summary lines against hand-computed values."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from kdutils.sweeps.cost import (Rate, RateSamples, Work, balance, per_shard, rate_line, run_seconds,
                                 seconds_per_image_epoch, shard_blocks, total_line)
from kdutils.sweeps.shards import (ALL, Shard, ShardError, from_part, parse_shard, parse_shard_or_zero_based,
                                   shard_of)


# ---- parsing -----------------------------------------------------------------------------------------------------
def test_good_shards_parse_counted_from_one():
    assert parse_shard("1/2") == Shard(1, 2) and parse_shard("2/2") == Shard(2, 2) and parse_shard(" 3 / 5") == Shard(3, 5)
    assert parse_shard("1/2").position == 0 and parse_shard("2/2").position == 1
    assert Shard.at(1, 2) == Shard(2, 2) and str(Shard(2, 3)) == "2/3"
    assert Shard.every(3) == [Shard(1, 3), Shard(2, 3), Shard(3, 3)] and ALL == Shard(1, 1)
    assert parse_shard(Shard(2, 2)) == Shard(2, 2)


@pytest.mark.parametrize("bad, says", [("0/2", "counts from 1"), ("3/2", "counts from 1"), ("1/0", "counts from 1"),
                                       ("-1/2", "counts from 1"), ("half", "whole numbers"), ("1-2", "whole numbers"),
                                       ("1/2/3", "whole numbers"), ("", "whole numbers"), ("1.5/2", "whole numbers")])
def test_bad_shards_are_refused_naming_the_value_and_what_is_allowed(bad, says):
    with pytest.raises(ShardError, match=says) as err:
        parse_shard(bad)
    assert repr(bad) in str(err.value) and "K/N" in str(err.value)
    assert isinstance(err.value, ValueError)  # callers outside argparse catch it as one


def test_a_count_the_command_cannot_split_into_is_refused():
    assert parse_shard("2/2", counts=(1, 2)) == Shard(2, 2)
    with pytest.raises(ShardError, match=r"N must be one of \[1, 2\] here; got '1/3'"):
        parse_shard("1/3", counts=(1, 2))
    with pytest.raises(ShardError, match="1 <= K <= N"):
        Shard(0, 2)


def test_the_old_zero_based_spelling_reads_as_the_first_shard_with_one_line(capsys):
    assert parse_shard_or_zero_based("0/2") == Shard(1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use --shard 1/2" in err and "the old --shard 1/2 is --shard 2/2" in err
    assert parse_shard_or_zero_based("2/2") == Shard(2, 2) and capsys.readouterr().err == ""  # the new spelling: silent
    with pytest.raises(ShardError, match="'0/x'"):
        parse_shard_or_zero_based("0/x")


def test_part_of_is_the_shard_one_higher_and_both_spellings_together_are_refused(capsys):
    assert from_part(0, 2) == Shard(1, 2) and from_part(1, 2) == Shard(2, 2) and from_part(None, None) is None
    assert from_part(None, 2) == Shard(1, 2) and from_part(0, None) == Shard(1, 1)  # the old defaults: part 0, of 1
    assert capsys.readouterr().err.count("old spelling") == 4
    with pytest.raises(ShardError, match="--part 2 --of 2"):
        from_part(2, 2)
    with pytest.raises(ShardError, match="both given"):
        shard_of(SimpleNamespace(shard=Shard(1, 2), part=0, of=2))
    assert shard_of(SimpleNamespace(shard=None, part=None, of=None)) == ALL


# ---- every chapter: old and new spellings select the same work ---------------------------------------------------
def test_invariance_old_and_new_spellings_select_the_same_pairs(monkeypatch, capsys):
    from kdutils.chapters.invariance import plan_v2, run_v2

    calls = []
    monkeypatch.setattr(plan_v2, "run_shard", lambda profile, k, n: calls.append((k, n)) or {})
    for spelling in ("0/2", "1/2", "2/2"):  # the old first shard; the new first and second
        assert run_v2.main(["--profile", "smoke", "--shard", spelling]) == 0
    assert calls == [(0, 2), (0, 2), (1, 2)]  # the old code called run_shard(K, N) with its 0-based K
    assert plan_v2.shard_pairs(*calls[1]) == ("dgcnn_deepsets",)  # what the old --shard 0/2 trained
    assert plan_v2.shard_pairs(*calls[2]) == ("resnet_mlp", "deepsets_mlp")  # ... and the old --shard 1/2
    assert capsys.readouterr().err.count("old spelling") == 1
    with pytest.raises(SystemExit):
        run_v2.main(["--profile", "smoke", "--shard", "1/3"])


def test_ls_kd_old_and_new_spellings_select_the_same_teacher_pairs(monkeypatch):
    from kdutils.chapters.ls_kd import plan_v3, recipe_v3 as rv3, run_v3

    calls = []
    monkeypatch.setattr(plan_v3, "run_shard", lambda profile, k, n: calls.append((k, n))
                        or SimpleNamespace(common_lr=None, missing=[]))
    for spelling in ("0/2", "1/2", "2/2"):
        assert run_v3.main(["--profile", "cpu", "--shard", spelling]) == 0
    assert calls == [(0, 2), (0, 2), (1, 2)]
    seeds = rv3.recipe_v3("cpu").teacher_seeds
    pairs = lambda k, n: [i for i in seeds if plan_v3.shard_of(i, n, seeds) == k]  # noqa: E731
    assert pairs(*calls[1]) == list(seeds[0::2]) and pairs(*calls[2]) == list(seeds[1::2])


def test_tgeo_part_of_and_shard_select_the_same_deal(monkeypatch, capsys):
    from kdutils.chapters.tgeo import campaign

    calls = []
    monkeypatch.setattr(campaign, "run_campaign", lambda profile, part, of, poll_s, **kw: calls.append((part, of)))
    for argv in (["--part", "0", "--of", "2"], ["--shard", "1/2"], ["--part", "1", "--of", "2"], ["--shard", "2/2"],
                 [], ["--of", "2"]):
        campaign.main(["--profile", "cpu", *argv])
    assert calls == [(0, 2), (0, 2), (1, 2), (1, 2), (0, 1), (0, 2)]  # run_campaign still takes the 0-based part
    assert capsys.readouterr().err.count("old spelling") == 3
    items = [campaign.Item(n, [], None, c) for n, c in (("a", 5.0), ("b", 4.0), ("c", 3.0), ("d", 3.0), ("e", 1.0))]
    first, second = campaign.deal(items, 2)
    # longest first to the least loaded: a->0 (5), b->1 (4), c->1 (7), d->0 (8), e->1 (8)
    assert [i.name for i in first] == ["a", "d"] and [i.name for i in second] == ["b", "c", "e"]
    with pytest.raises(SystemExit):
        campaign.main(["--profile", "cpu", "--shard", "1/2", "--part", "0", "--of", "2"])


def test_does_kd_work_set_shard_and_shard_reach_the_schedule_alike(monkeypatch, tmp_path, capsys):
    from kdutils.__main__ import main
    from kdutils.chapters.does_kd_work import schedule

    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KDUTILS_PROFILE", raising=False)
    got = []
    monkeypatch.setattr(schedule, "run", lambda *a, shard, **k: got.append(parse_shard(shard)) or [])
    for argv in (["--set", "shard", "2/2"], ["--shard", "2/2"], []):
        assert main(["run", "does_kd_work", "--profile", "smoke", *argv]) == 0
    assert got == [Shard(2, 2), Shard(2, 2), ALL]
    err = capsys.readouterr().err
    assert err.count("old spelling") == 1 and "use --shard 2/2" in err
    with pytest.raises(SystemExit):
        main(["run", "does_kd_work", "--profile", "smoke", "--shard", "1/2", "--set", "shard", "1/2"])
    with pytest.raises(SystemExit):
        main(["run", "hinton", "--profile", "smoke", "--shard", "1/2"])  # its run is not split: refused, not ignored
    assert "not split into shards" in capsys.readouterr().err
    jobs = [SimpleNamespace(key=lambda n=n: n) for n in "pqrs"]
    cost = {"p": 2.0, "q": 2.0, "r": None, "s": 1.0}
    shares = schedule.assign(jobs, 2, lambda j: cost[j.key()])
    # r has no estimate: it counts as the median known cost, 2; ties go by key: p->0, q->1, r->0, s->1
    assert [[j.key() for j in s] for s in shares] == [["p", "r"], ["q", "s"]]


# ---- the cost model ------------------------------------------------------------------------------------------------
def test_rates_are_medians_and_selection_runs_only_stand_in():
    assert seconds_per_image_epoch(6.0, 2, 1000) == pytest.approx(3e-3)
    assert seconds_per_image_epoch(None, 2, 1000) is None and seconds_per_image_epoch(6.0, 0, 1000) is None
    assert seconds_per_image_epoch(6.0, 2, -5.0) is None
    s: RateSamples[str] = RateSamples()
    for v in (1.0, 5.0, 2.0):
        s.add("net", v)
    s.add("net", 100.0, fallback=True)  # a final run measures "net": the selection run is not used
    s.add("other", 7.0, fallback=True)
    s.add("other", 9.0, fallback=True)
    s.add("skipped", None)
    assert s.medians() == {"net": Rate(2.0, 3), "other": Rate(8.0, 2)}
    assert s.count("net") == 3 and s.count("other") == 2 and s.count("skipped") == 0


def test_run_seconds_and_the_summary_lines_against_hand_values():
    assert run_seconds(1e-3, 10 * 600, 900) == pytest.approx(6.0 + 0.3)  # a forward is a third of a step
    assert math.isnan(run_seconds(math.nan, 10, 0))
    assert rate_line("mlp", Rate(2.5e-5, 4), digits=4) == "  mlp: 0.0250 ms (median of 4 runs)"
    assert rate_line("cnn", None) == "  cnn: NO RECORD: no estimate"
    assert per_shard([6120.0, 5904.0]) == "shard 1/2 1.70 h, shard 2/2 1.64 h"
    blocks, total = shard_blocks([Work(3, "teachers", 3600.0, 0), Work(2, "students", 1800.0, 1),
                                  Work(1, "alone", 1800.0, 1)], 2)
    assert blocks == [["shard 1/2: 3 runs, about 1.00 h of one thread", "    3 x teachers: 60.0 min"],
                      ["shard 2/2: 3 runs, about 1.00 h of one thread", "    2 x students: 30.0 min",
                       "    1 x alone: 30.0 min"]]
    assert total == 7200.0 and total_line(total) == "total: about 2.00 core-hours"
    _, unknown = shard_blocks([Work(1, "x", math.nan, 0)], 1)
    assert total_line(unknown) == "total: unknown (a model without a measured rate)"


def test_balance_is_longest_first_to_the_least_loaded_and_order_independent():
    costs = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 1.0}
    deal = balance(list(costs), 2, costs.get, str)
    assert deal == [["a", "d"], ["b", "c", "e"]]
    assert balance(list(reversed(costs)), 2, costs.get, str) == deal
    assert balance(list(costs), 1, costs.get, str) == [["a", "b", "c", "d", "e"]]
    assert balance([], 3, costs.get, str) == [[], [], []]
    with pytest.raises(ValueError, match="got 0"):
        balance(list(costs), 0, costs.get, str)
