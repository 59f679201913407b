"""kdutils.report.present: the numbers, tables and figures a reader sees."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kdutils.report import present


def test_mean_std_of_known_numbers():
    # mean of 0.97, 0.98, 0.99 is 0.98; sample std is 0.01
    t = present.mean_std_table(pd.DataFrame({"arm": ["a"] * 3, "acc": [0.97, 0.98, 0.99],
                                             "status": ["ok"] * 3}), by=["arm"], metrics=["acc"])
    assert t.loc[0, "acc"] == "0.9800 ± 0.0100"
    assert t.loc[0, "runs"] == 3 and t.loc[0, "status"] == "ok"
    assert present.fmt_mean_std(0.5, 0.25, digits=2, n=4) == "0.50 ± 0.25 (n=4)"
    assert present.fmt_mean_std(0.5, float("nan")) == "0.5000"
    assert present.fmt_mean_std(float("nan"), 0.1) == present.MISSING


def test_mean_std_table_counts_failed_runs():
    df = pd.DataFrame({"arm": ["kd"] * 3, "acc": [0.9, np.nan, 0.8], "status": ["ok", "diverged", "ok"]})
    t = present.mean_std_table(df, by=["arm"], metrics=["acc"])
    assert t.loc[0, "acc"] == "0.8500 ± 0.0707"  # over the two finished runs
    assert t.loc[0, "runs"] == 3
    assert t.loc[0, "status"] == "1 diverged"


def test_interval_and_small_values():
    assert present.fmt_interval(-17, -25, -9, unit="errors") == "-17 errors [-25, -9]"
    assert present.fmt_value(7.03e-05) == "7.03×10⁻⁵"  # not rounded to 0.0001, and no "e-05"
    assert present.fmt_value(6.18e-09) == "6.18×10⁻⁹" and present.fmt_value(2.5e7) == "2.5×10⁷"
    assert present.fmt_value(0.1) == "0.1" and present.fmt_value(5e-4) == "0.0005"  # no "0.1000", "5.00e-04"
    assert present.fmt_value(4.567e-4) == "4.57×10⁻⁴"  # 0.0005 would round it off by 9%
    assert present.fmt_value(0.123456) == "0.1235"
    assert present.fmt_value(None) == present.MISSING


def test_short_device():
    assert present.short_device("cpu: x86_64, 1 threads") == "CPU (1 thread)"
    assert present.short_device("cuda: NVIDIA H100 80GB HBM3") == "H100"
    assert present.short_device(float("nan")) == present.MISSING


def _diverged_table() -> pd.DataFrame:
    return pd.DataFrame({"role": ["teacher", "student", "distilled"], "tau": [np.nan, np.nan, 4.0],
                         "accuracy": [0.99, 0.97, np.nan], "paper_acc": [0.992, np.nan, 0.98],
                         "status": ["ok", "ok", "diverged"], "device": ["cpu: x86_64, 1 threads"] * 3})


def test_no_nan_in_rendered_html_and_status_visible():
    t = present.results_table(_diverged_table(), {"role": "arm", "tau": "τ", "accuracy": "test accuracy",
                                                  "device": "device"}, paper={"accuracy": "paper_acc"})
    html = t.to_html()
    assert not re.search(r">\s*(NaN|nan|None)\s*<", html)
    assert "NaN" not in t.frame.to_string()
    assert list(t.frame.columns) == ["arm", "τ", "test accuracy", "test accuracy (paper)", "device", "status"]
    # the diverged run shows its status in its empty metric cell, and in the status column
    assert t.frame.loc[2, "test accuracy"] == "diverged"
    assert t.frame.loc[2, "status"] == "diverged"
    assert t.frame.loc[2, "test accuracy (paper)"] == "0.980"  # the column's shared trailing zero dropped
    assert t.frame.loc[1, "test accuracy (paper)"] == present.MISSING
    assert t.frame.loc[0, "device"] == "CPU (1 thread)"
    assert "<th>" in html and "index" not in html.lower()  # no pandas index column
    assert 'class="kd-text kd-bad"' in html or 'class="kd-bad"' in html


def test_a_chance_run_is_marked_but_its_not_applicable_cells_stay_empty():
    # a run at chance finished and was measured: its status is marked, but the teacher's tau is empty by design
    df = pd.DataFrame({"role": ["teacher", "distilled"], "tau": [np.nan, 4.0], "accuracy": [0.034, np.nan],
                       "status": ["chance", "diverged"]})
    t = present.results_table(df, {"role": "arm", "tau": "τ", "accuracy": "test accuracy"})
    assert t.frame.loc[0, "τ"] == present.MISSING and t.frame.loc[0, "test accuracy"] == "0.034"
    assert t.frame.loc[0, "status"] == "chance" and (0, "status") in t.bad_cells and (0, "τ") not in t.bad_cells
    assert t.frame.loc[1, "test accuracy"] == "diverged"  # a diverged run's missing measurement names why


def test_toggle_only_above_max_rows():
    df = pd.DataFrame({"x": range(20), "status": ["ok"] * 20})
    short = present.results_table(df.head(5), max_rows=10).to_html()
    assert "<details" not in short
    assert "<details" not in present.results_table(df.head(13), max_rows=10).to_html()  # 3 over: shown whole
    long = present.results_table(df, max_rows=10).to_html()
    assert "<details" in long and "Show all 20 rows" in long
    # nothing is cut: every value appears in the toggled full table
    full = long.split("<details")[1]
    assert all(f"<td>{i}</td>" in full for i in range(20))


def test_bad_column_names_are_errors():
    with pytest.raises(KeyError, match="accurcy"):
        present.results_table(_diverged_table(), ["accurcy"])
    with pytest.raises(ValueError, match="max_rows"):
        present.results_table(_diverged_table(), max_rows=0)


def test_page_figure_layout_and_shared_legend():
    fig, axes = present.page_figure(5)
    assert len(axes) == 5 and len(fig.axes) == 5  # the 6th slot of the 2x3 grid is removed
    assert fig.get_size_inches()[0] == pytest.approx(present.PAGE_WIDTH_IN)
    df = pd.DataFrame({"tau": [1, 1, 4, 4] * 2, "acc": [0.9, 0.92, 0.95, 0.97] * 2,
                       "arm": ["a"] * 4 + ["b"] * 4})
    for ax in axes[:2]:
        agg = present.errorbar_lines(ax, df, "tau", "acc", hue="arm")
        ax.legend()
    row = agg[(agg.arm == "a") & (agg.tau == 4)].iloc[0]
    assert row["mean"] == pytest.approx(0.96) and row["spread"] == pytest.approx(np.std([0.95, 0.97], ddof=1))
    leg = present.shared_legend(fig, axes)
    assert [t.get_text() for t in leg.get_texts()] == ["a", "b"]
    assert all(ax.get_legend() is None for ax in axes)
    plt.close(fig)


def test_figure_captions_are_numbered():
    figs = present.Figures()
    assert figs.caption("one") == "**Figure 1.** one"
    assert figs.caption("two") == "**Figure 2.** two"


def test_curves_figure_one_panel_per_metric_with_seed_spread():
    df = pd.DataFrame({"epoch": [1, 2] * 4, "loss": [1.0, 0.5, 1.2, 0.7, 2.0, 1.0, 2.2, 1.2],
                       "acc": [0.5, 0.7] * 4, "arm": ["kd"] * 4 + ["alone"] * 4})
    fig = present.curves_figure(df, ys=("loss", "acc"), hue="arm", titles={"loss": "training loss"})
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "acc"]
    bars = fig.axes[0].containers[0]  # the first hue's error bars: std over the two runs at each epoch
    lo, hi = bars.lines[1][0].get_ydata(), bars.lines[1][1].get_ydata()
    assert np.allclose((hi - lo) / 2, [np.std([1.0, 1.2], ddof=1), np.std([0.5, 0.7], ddof=1)])
    assert len(fig.legends) == 1
    plt.close(fig)


def test_wide_and_wrapped_columns_get_their_classes():
    df = pd.DataFrame({"claim": ["a long claim"], "scale": ["cpu"], "n": [3]})
    html = present.results_table(df, wrap=("scale",), wide=("claim",), status=None).to_html()
    assert 'class="kd-text kd-wrap-text kd-wide">a long claim' in html
    assert 'class="kd-text kd-wrap-text">cpu' in html and "<td>3</td>" in html


def test_fmt_series_mean_std_fixed_decimals_sample_std():
    # mean of 1, 2, 4 is 7/3; sample std sqrt(((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2) = sqrt(7/3) = 1.5275...
    assert present.fmt_series_mean_std(pd.Series([1.0, 2.0, 4.0]), 2) == "2.33 ± 1.53"
    assert present.fmt_series_mean_std([3.0, "n/a", None], 1) == "3.0"  # one number left: no std
    assert present.fmt_series_mean_std(pd.Series([], dtype=float)) == present.MISSING


def test_one_unit_for_accuracy_differences():
    assert present.unify_units("+2.1 pp [1.0, 3.2]; -0.5pp; 2 percentage points") == \
        "+2.1 pts [1.0, 3.2]; -0.5 pts; 2 pts"
    assert present.unify_units("student − plain: +0.6 points [0.1, 1.1]") == "student − plain: +0.6 pts [0.1, 1.1]"
    assert present.unify_units("1000 points per shape, 16 points") == "1000 points per shape, 16 points"
    assert present.markdown("-2.2 pp per group").data == "-2.2 pts per group"


def test_mean_std_keeps_its_decimals_so_a_column_reads_evenly():
    assert present.fmt_mean_std(0.98, 0.001) == "0.9800 ± 0.0010"
    assert present.fmt_mean_std(6e-9, 1e-9) == "6×10⁻⁹ ± 1×10⁻⁹"
    assert present.fmt_mean_std(84.45, 0.0871, 2) == "84.45 ± 0.09"  # the mean's decimals, not 8.71×10⁻²
    assert present.fmt_mean_std(1.0, 0.004, 2) == "1.00 ± 4×10⁻³"  # 0.00 would hide the spread


def test_a_column_keeps_equal_decimals_without_the_zeros_they_all_share():
    df = pd.DataFrame({"lr": [0.1, 0.05, 0.3], "acc": [0.9825, 0.98, 0.97], "one": [0.1, np.nan, np.nan]})
    f = present.results_table(df, status=None, device=None).frame
    assert list(f["lr"]) == ["0.10", "0.05", "0.30"]
    assert list(f["acc"]) == ["0.9825", "0.9800", "0.9700"]
    assert list(f["one"]) == ["0.1", present.MISSING, present.MISSING]


def test_a_table_much_wider_than_long_is_shown_on_its_side():
    cols = {f"metric_{i}": [0.5 + i / 100, 0.25] for i in range(12)}
    df = pd.DataFrame({"role": ["teacher", "student"], **cols, "status": ["ok", "diverged"]})
    t = present.results_table(df, device=None)
    html = t.to_html()
    assert "<th>teacher</th>" in html and "<th>student</th>" in html and "<td" in html
    side = t.transposed().frame
    assert list(side.columns) == ["", "teacher", "student"] and side.iloc[0].tolist() == ["metric 0", "0.50", "0.25"]
    assert side.iloc[-1].tolist() == ["status", "ok", "diverged"]
    narrow = present.results_table(df[["role", "metric_0", "status"]], device=None).to_html()
    assert "<th>teacher</th>" not in narrow  # a narrow table stays as it is
    twice = pd.DataFrame({"role": ["a_b", "a_b", "c"], **{k: v + [0.0] for k, v in cols.items()}})
    heads = list(present.results_table(twice, status=None, device=None).transposed().frame.columns)
    assert heads == ["", "a b (1)", "a b (2)", "c"]  # readable, and only the repeated name numbered


def test_raw_column_names_read_as_words():
    df = pd.DataFrame({"train_agreement": [0.5], "im_l1": [0.1]})
    assert list(present.results_table(df, status=None, device=None).frame.columns) == ["train agreement", "im l1"]
    assert list(present.results_table(df, {"im_l1": "IM (L1)"}, status=None, device=None).frame.columns) == ["IM (L1)"]


def test_prose_from_records_reads_as_prose():
    t = "IM gap closed at tau=16; eta_similar (LS) -5.7%; threshold -0.349358; slope 0.007236; +2 pp"
    assert present.readable_text(t) == ("IM gap closed at τ = 16; η(similar) (LS) -5.7%; threshold -0.349; "
                                        "slope 0.00724; +2 pts")
    kept = r"the loss $\tau=1$ and `--set tau=4` and version 2.13.0 and 0.12345"
    assert present.readable_text(kept) == r"the loss $\tau=1$ and `--set tau=4` and version 2.13.0 and 0.123"
    # an arXiv identifier and a link's target are names, not measurements; a large value keeps its digits
    paper = "[arXiv:2312.15112](https://arxiv.org/abs/2312.15112); arXiv:1503.02531, took 1234.56789 s"
    assert present.readable_text(paper) == ("[arXiv:2312.15112](https://arxiv.org/abs/2312.15112); "
                                            "arXiv:1503.02531, took 1235 s")


def test_rates_in_percent_like_the_chapters():
    df = pd.DataFrame({"role": ["teacher"], "accuracy": [0.99031], "nll": [0.0364], "agreement": [float("nan")]})
    f = present.results_table(df, status=None, device=None, formats=present.RATE_FORMATS).frame
    assert f.iloc[0].tolist() == ["teacher", "99.03%", "0.0364", present.MISSING]


def test_empty_markdown_publishes_nothing_not_its_python_repr():
    """myst-nb falls back to text/plain ("<IPython.core.display.Markdown object>") for an empty or blank markdown
    output, so empty text must publish no output at all."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display

    from kdutils.report import present

    shell = InteractiveShell.instance()
    published = []
    pub = shell.display_pub.publish
    shell.display_pub.publish = lambda data, *a, **k: published.append(data)
    try:
        display(present.markdown(""))
        display(present.markdown("  "))
        assert published == []
        display(present.markdown("**Gate** passes."))
    finally:
        shell.display_pub.publish = pub
    assert [d.get("text/markdown") for d in published] == ["**Gate** passes."]
