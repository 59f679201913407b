"""Presentation helpers shared by every chapter: results tables and figures a reader can read at 1280 px.

Why a module: raw pandas dumps cut long tables with "...", show NaN for a diverged run while its status is
off-screen, print four-line device strings and hide key columns behind a scroll. These helpers fix that once:

- `fmt_mean_std`, `fmt_interval`, `fmt_value`, `unify_units`, `short_device`: one number format for the whole
  book (they live in `numbers` and are used from here);
- `mean_std_table`: aggregate seeds/folds into "mean ± std" cells with the count of runs per row;
- `results_table`: chosen columns with readable names, no index, no NaN cells (a missing value shows "—", or
  the run's status when the run did not finish), the paper's value beside ours, long tables collapsed behind
  an HTML ``<details>`` toggle instead of being cut;
- `page_figure`, `shared_legend`, `errorbar_lines`, `Figures`: figures sized for the page, one shared
  legend, error bars from seeds/folds, numbered captions.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.report.numbers import (MISSING, RATE_FORMATS, _fixed, _is_missing, _trim_common_zeros,  # noqa: F401
                                    claim_anchor, fmt_interval, fmt_mean_std, fmt_pct, fmt_sci, fmt_series_mean_std,
                                    fmt_value, readable, readable_text, short_device, shorten_devices, unify_units)

OK_STATUSES = frozenset({"ok", "", "nan", "none"})
"""Run statuses that mean "finished normally"; any other status is shown in the cells it left empty."""

MEASURED_STATUSES = frozenset({"chance"})
"""Failed statuses of runs that finished and were measured (accuracy at chance level): the run's status column
is marked, but its empty cells are empty by design (a teacher's tau), so they show "—", not the status."""

PAGE_WIDTH_IN = 7.5
"""Figure width in inches: at the book's 100 dpi it fills the ~750 px content column of a 1280 px window, so
10-pt text stays about 10 px tall on screen."""

FOLD_SLACK = 3
"""A table at most this many rows over its `max_rows` is shown whole (a toggle for so few rows repeats it)."""

TRANSPOSE_COLUMNS = 10
"""A table with more columns than this (and at most half as many rows) is shown transposed (`Table.to_html`)."""

MAX_COLUMNS = 3
"""Most panels per figure row; more makes each panel too narrow to read at page size."""


# ---------------------------------------------------------------------------------------------------------
# Aggregation


def mean_std_table(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], digits: int = 4,
                   status: str | None = "status", labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per group of `by`: each metric as "mean ± std" over the group's runs (seeds or folds), a
    "runs" column, and the non-ok statuses counted (e.g. "1 diverged"), so a failed run is counted, not dropped.

    Means are over the runs that have a value; the "runs" column says how many runs the group holds."""
    missing = [c for c in (*by, *metrics) if c not in df.columns]
    if missing:
        raise KeyError(f"mean_std_table: columns {missing} not in the table; it has {list(df.columns)}")
    labels = dict(labels or {})
    rows = []
    for key, g in df.groupby(list(by), dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key))
        for m in metrics:
            vals = pd.to_numeric(g[m], errors="coerce").dropna()
            std = vals.std(ddof=1) if len(vals) > 1 else None
            row[labels.get(m, m)] = fmt_mean_std(vals.mean() if len(vals) else None, std, digits)
        row["runs"] = len(g)
        if status and status in g:
            bad = g[status].astype(str).str.lower()
            bad = bad[~bad.isin(OK_STATUSES)]
            row["status"] = ", ".join(f"{k} {v}" if len(g) > 1 else str(v)
                                      for v, k in bad.value_counts().items()) if len(bad) else "ok"
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Tables


_TABLE_CSS = ("<style>.kd-table{border-collapse:collapse;font-size:0.85em;margin:0.4em 0}"
              ".kd-table th,.kd-table td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;"
              "white-space:nowrap}.kd-table th{border-bottom:2px solid #999}"
              ".kd-table td.kd-text,.kd-table th.kd-text{text-align:left}.kd-table td.kd-wrap-text{white-space:normal;"
              "min-width:9em;max-width:32em}.kd-table td.kd-wide{min-width:18em;max-width:40em}"
              ".kd-table td.kd-bad{color:#b00020;font-weight:600}.kd-table td.kd-paper{color:#555;"
              "font-style:italic}.kd-wrap{overflow-x:auto;max-width:100%}"
              "details.kd-more>summary{cursor:pointer;color:#1a5fb4;margin:0.3em 0}"
              ".kd-table caption{caption-side:top;text-align:left;color:#555;font-size:0.95em;padding:0 0 4px}</style>")


@dataclass
class Table:
    """A rendered results table. In a notebook it displays as HTML (`_repr_html_`); `frame` holds the cell
    strings (no NaN anywhere) for tests and for glue."""

    frame: pd.DataFrame
    caption: str = ""
    max_rows: int = 15
    bad_cells: set[tuple[int, str]] = field(default_factory=set)
    paper_columns: set[str] = field(default_factory=set)
    text_columns: set[str] = field(default_factory=set)
    links: dict[tuple[int, str], str] = field(default_factory=dict)
    wrap_columns: set[str] = field(default_factory=set)
    wide_columns: set[str] = field(default_factory=set)
    css_class: str = ""  # an extra class on <table> (e.g. "kd-scorecard"); cells then carry data-label
    column_classes: dict[str, str] = field(default_factory=dict)  # header -> extra class of its cells
    cell_classes: dict[tuple[int, str], str] = field(default_factory=dict)  # (row, header) -> extra class

    def _rows_html(self, rows: Iterable[int]) -> str:
        out = []
        for i in rows:
            cells = []
            for c in self.frame.columns:
                cls = []
                if c in self.text_columns:
                    cls.append("kd-text")
                if (i, c) in self.bad_cells:
                    cls.append("kd-bad")
                if c in self.paper_columns:
                    cls.append("kd-paper")
                if c in self.wrap_columns:
                    cls.append("kd-wrap-text")
                if c in self.wide_columns:
                    cls.append("kd-wide")
                cls += [x for x in (self.column_classes.get(c), self.cell_classes.get((i, c))) if x]
                if self.css_class and str(self.frame.iat[i, self.frame.columns.get_loc(c)]) == MISSING:
                    cls.append("kd-empty")  # a card leaves out its empty fields
                attr = f' class="{" ".join(cls)}"' if cls else ""
                if self.css_class:  # a table that restyles itself (the scorecard's cards) names each cell's column
                    attr += f' data-label="{html.escape(str(c), quote=True)}"'
                text = html.escape(str(self.frame.iat[i, self.frame.columns.get_loc(c)]))
                if (i, c) in self.links:
                    text = f'<a href="{html.escape(self.links[(i, c)], quote=True)}">{text}</a>'
                cells.append(f"<td{attr}>{text}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        return "".join(out)

    def _table_html(self, rows: Iterable[int], caption: str = "") -> str:
        text_attr = ' class="kd-text"'
        head = "".join(f"<th{text_attr if c in self.text_columns else ''}>{html.escape(str(c))}</th>"
                       for c in self.frame.columns)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        cls = f"kd-table {self.css_class}".strip()
        return (f'<div class="kd-wrap"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{self._rows_html(rows)}</tbody></table></div>")

    def transposed(self) -> "Table":
        """The table turned on its side: one column per row (headed by the row's first cell), one row per
        column. The failed cells stay marked; links and column styles are dropped."""
        f = self.frame
        heads = [readable(v) for v in f.iloc[:, 0]]
        seen: dict[str, int] = {}
        total = {h: heads.count(h) for h in heads}
        for i, h in enumerate(heads):  # a repeated name (two seeds of one arm) is numbered: "distilled (2)"
            if total[h] > 1:
                seen[h] = seen.get(h, 0) + 1
                heads[i] = f"{h} ({seen[h]})"
        body = pd.DataFrame({"": [str(c) for c in f.columns[1:]],
                             **{h: [str(v) for v in f.iloc[i, 1:]] for i, h in enumerate(heads)}})
        bad = {(list(f.columns[1:]).index(c), heads[i]) for i, c in self.bad_cells if c in list(f.columns[1:])}
        return Table(body, caption=self.caption, max_rows=max(self.max_rows, len(body)), bad_cells=bad,
                     text_columns={""})

    def to_html(self) -> str:
        """The table as HTML; with more than `max_rows` rows, the first `max_rows` show and the whole table
        sits behind a <details> toggle (nothing is cut). A table much wider than long (more than
        `TRANSPOSE_COLUMNS` columns, at most half as many rows: a point notebook's runs with every metric) is
        shown on its side, one column per run, so it fits the page instead of scrolling."""
        n = len(self.frame)
        if len(self.frame.columns) > TRANSPOSE_COLUMNS and 0 < 2 * n <= len(self.frame.columns):
            return self.transposed().to_html()
        if n <= self.max_rows + FOLD_SLACK:  # a toggle to show one or two more rows would only repeat the table
            return _TABLE_CSS + self._table_html(range(n), self.caption)
        return (_TABLE_CSS + self._table_html(range(self.max_rows), self.caption)
                + f'<details class="kd-more"><summary>Show all {n} rows</summary>'
                + self._table_html(range(n)) + "</details>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_markdown(self) -> str:
        """A pipe table (for generated Markdown pages and glue); never truncated."""
        cols = [str(c) for c in self.frame.columns]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in self.frame.iterrows():
            lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Table: {len(self.frame)} rows x {len(self.frame.columns)} columns>"

    def __len__(self) -> int:
        return len(self.frame)


def results_table(df: pd.DataFrame, columns: Mapping[str, str] | Sequence[str] | None = None, *,
                  status: str | None = "status", paper: Mapping[str, str] | None = None,
                  formats: Mapping[str, Callable[[Any], str]] | None = None, digits: int = 4,
                  max_rows: int = 15, caption: str = "", device: str | None = "device",
                  links: Mapping[str, str] | None = None, wrap: Iterable[str] = (),
                  wide: Iterable[str] = (), css_class: str = "",
                  column_classes: Mapping[str, str] | None = None) -> Table:
    """A results table a reader can read.

    df: one row per run or per aggregated arm. columns: which columns to show, in order, as {column: readable
    name} (or a list, shown with `readable` names); None shows all. status: the column holding the run status;
    it is always shown (right after the chosen columns) when the table has it, and the empty cells of a run
    that failed before it was measured (diverged, not "chance") show its status instead of "—". paper: {our
    column: column holding the paper's value}; the paper's value is shown right after ours as "<name> (paper)".
    formats: per-column formatter overriding the default
    number format. device: a column shortened with `short_device`. links: {column: column holding a URL}:
    the cell links there (the URL column itself is not shown unless chosen). wrap: columns of long text
    (claims, evidence) that wrap instead of widening the table; wide: the wrapped columns given the most room
    (e.g. the claim), so they do not shrink to a word per line. css_class: an extra class on the table (its
    cells then carry data-label="<header>" for CSS that stacks them); column_classes: {column: class} for
    its cells.
    """
    if columns is None:
        columns = {c: readable(c) for c in df.columns}
    elif not isinstance(columns, Mapping):
        columns = {c: readable(c) for c in columns}
    paper = dict(paper or {})
    formats = dict(formats or {})
    links = dict(links or {})
    missing = [c for c in [*columns, *paper.values(), *paper.keys(), *links.values()] if c not in df.columns]
    if missing:
        raise KeyError(f"results_table: columns {missing} not in the table; it has {list(df.columns)}")
    if max_rows < 1:
        raise ValueError(f"results_table: max_rows must be >= 1, got {max_rows}")

    order: list[tuple[str, str, bool]] = []  # (source column, header, is_paper)
    for c, name in columns.items():
        if c == status:
            continue
        order.append((c, name, False))
        if c in paper:
            order.append((paper[c], f"{name} (paper)", True))
    has_status = status is not None and status in df.columns
    if status is not None and has_status:
        order.append((status, columns.get(status, "status") if isinstance(columns, Mapping) else "status", False))

    data = df.reset_index(drop=True)
    cells: dict[str, list[str]] = {h: [] for _, h, _ in order}
    bad: set[tuple[int, str]] = set()
    link_cells: dict[tuple[int, str], str] = {}
    text_cols: set[str] = set()
    for i in range(len(data)):
        st = str(data.at[i, status]) if has_status and not _is_missing(data.at[i, status]) else "ok"
        failed = st.lower() not in OK_STATUSES
        unmeasured = failed and st.lower() not in MEASURED_STATUSES
        for src, header, is_paper in order:
            v = data.at[i, src]
            if src == device:
                s = short_device(v)
            elif src in formats and not _is_missing(v):
                s = formats[src](v)
            else:
                s = _fixed(v, digits)
            if s == MISSING and unmeasured and not is_paper:
                s = st
                bad.add((i, header))
            if has_status and src == status:
                s = st
                if failed:
                    bad.add((i, header))
            cells[header].append(s)
            if src in links and not _is_missing(data.at[i, links[src]]) and not is_paper:
                link_cells[(i, header)] = str(data.at[i, links[src]])
    for src, header, _ in order:
        if src not in formats and src != device:
            cells[header] = _trim_common_zeros(cells[header])
    frame = pd.DataFrame(cells, columns=[h for _, h, _ in order])
    for src, header, _ in order:
        if not pd.api.types.is_numeric_dtype(df[src]) or src in (status, device):
            text_cols.add(header)
    return Table(frame, caption=caption, max_rows=max_rows, bad_cells=bad,
                 paper_columns={h for _, h, p in order if p}, text_columns=text_cols, links=link_cells,
                 wrap_columns={h for src, h, _ in order if src in set(wrap) | set(wide)},
                 wide_columns={h for src, h, _ in order if src in set(wide)}, css_class=css_class,
                 column_classes={h: dict(column_classes or {})[src] for src, h, _ in order
                                 if src in dict(column_classes or {})})


# ---------------------------------------------------------------------------------------------------------
# Figures


def page_figure(n_panels: int = 1, ncols: int | None = None, panel_height: float = 2.6,
                width: float = PAGE_WIDTH_IN, **kwargs):
    """A figure sized for the page: at most `MAX_COLUMNS` panels per row, each `panel_height` inches tall,
    `width` inches wide in all (fills the content column at 1280 px). Returns (fig, flat list of axes); the
    unused axes of the last row are removed. Split grids larger than about 6 panels into several figures."""
    import matplotlib.pyplot as plt

    if n_panels < 1:
        raise ValueError(f"page_figure: n_panels must be >= 1, got {n_panels}")
    ncols = min(ncols or MAX_COLUMNS, n_panels)
    if ncols < 1:
        raise ValueError(f"page_figure: ncols must be >= 1, got {ncols}")
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, panel_height * nrows + 0.6), squeeze=False,
                             layout="constrained", **kwargs)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.remove()
    return fig, flat[:n_panels]


def shared_legend(fig, axes: Sequence | None = None, ncol: int | None = None, loc: str = "outside lower center",
                  **kwargs):
    """One legend for the whole figure, built from the (deduplicated) labelled artists of every panel, so no
    panel is covered and a series missing from one panel still appears. Returns the legend (None if no labels)."""
    axes = list(axes if axes is not None else fig.axes)
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_") and label not in seen:
                seen[label] = h
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not seen:
        return None
    return fig.legend(list(seen.values()), list(seen.keys()), loc=loc, ncol=ncol or min(len(seen), 5),
                      frameon=False, **kwargs)


def errorbar_lines(ax, df: pd.DataFrame, x: str, y: str, hue: str | None = None, *, labels:
                   Mapping[Any, str] | None = None, ci: str = "std", **kwargs) -> pd.DataFrame:
    """Plot y against x as mean ± spread over the repeated runs (seeds/folds) at each x, one line per `hue`
    value. ci="std" draws ± one standard deviation; "sem" ± one standard error. A group with one run gets
    no bar. Returns the aggregated frame (hue, x, mean, spread, n) so the caller can quote it."""
    if ci not in ("std", "sem"):
        raise ValueError(f"errorbar_lines: ci must be 'std' or 'sem', got {ci!r}")
    for c in (x, y, *([hue] if hue else [])):
        if c not in df.columns:
            raise KeyError(f"errorbar_lines: column {c!r} not in the table; it has {list(df.columns)}")
    labels = dict(labels or {})
    d = df.assign(_y=pd.to_numeric(df[y], errors="coerce")).dropna(subset=["_y"])
    keys = [hue, x] if hue else [x]
    g = d.groupby(keys, dropna=False)["_y"]
    agg = g.agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else 0.0, n="size").reset_index()
    agg["spread"] = agg["std"] / np.sqrt(agg["n"]) if ci == "sem" else agg["std"]
    groups = agg.groupby(hue, sort=False) if hue else [(None, agg)]
    for h, sub in groups:
        sub = sub.sort_values(x)
        ax.errorbar(sub[x], sub["mean"], yerr=sub["spread"], capsize=3, marker="o", ms=4,
                    label=labels.get(h, str(h)) if hue else labels.get(y, y), **kwargs)
    return agg


class Figures:
    """Numbered figures for one page: `show` displays a figure followed by its caption "Figure n. ...", and
    optionally glues it (myst-nb) under `name` so Markdown can place it with ``{glue:figure}``.

    One instance per notebook (numbers restart with the kernel, so each page counts from 1)."""

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def caption(self, text: str) -> str:
        """The Markdown caption for the next figure (and advance the counter)."""
        n, self.next = self.next, self.next + 1
        return f"**Figure {n}.** {text}"

    def show(self, fig, text: str, name: str | None = None) -> str:
        """Display `fig` then its numbered caption; close it so the notebook shows it once. Returns the
        caption's Markdown."""
        import matplotlib.pyplot as plt
        from IPython.display import Markdown, display

        cap = self.caption(text)
        if name is not None:
            from myst_nb import glue
            glue(name, fig, display=False)
        display(fig)
        display(Markdown(cap))
        plt.close(fig)
        return cap


class _NoOutput:
    """What `markdown` returns for empty text: displaying it publishes nothing. An empty (or blank) Markdown object
    would make the book fall back to its Python repr, "<IPython.core.display.Markdown object>"."""

    def _ipython_display_(self) -> None:
        return None

    def __repr__(self) -> str:
        return ""


def markdown(text: str):
    """Markdown output (prose with numbers computed from the records), for a `remove-input` cell; nothing at all
    for empty text (`_NoOutput`)."""
    from IPython.display import Markdown

    text = readable_text(text)
    return Markdown(text) if text.strip() else _NoOutput()


def curves_figure(df: pd.DataFrame, x: str = "epoch", ys: Sequence[str] = ("loss",), hue: str | None = None, *,
                  titles: Mapping[str, str] | None = None, labels: Mapping[Any, str] | None = None,
                  panel_height: float = 2.6):
    """Training curves as a plot, not a table of floats: one panel per metric in `ys`, one line per `hue`
    value, mean ± std over the repeated runs (seeds/folds) at each `x`, one shared legend."""
    titles = dict(titles or {})
    fig, axes = page_figure(len(ys), panel_height=panel_height)
    for ax, y in zip(axes, ys):
        errorbar_lines(ax, df, x, y, hue, labels=labels)
        ax.set_title(titles.get(y, y), fontsize=10)
        ax.set_xlabel(x)
    shared_legend(fig, axes)
    return fig
