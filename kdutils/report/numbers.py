"""Numbers and words as the book prints them: one format for values, means, intervals, devices and units.

Why apart from `present`: every table and every sentence built from records goes through these, so they are
the book's number style in one place: "0.1" not "0.1000", "6.18×10⁻⁹" not "6.18e-09", mean ± std with even
decimals, "pts" for every accuracy difference, short device names, and the anchor of a claim's verdict.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from kdutils.lazy import pandas as pd

MISSING = "—"
"""What a cell shows when there is no value (never "NaN")."""


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def fmt_sci(x: float, significant: int = 3) -> str:
    """A tiny or huge number as a reader writes it: 6.18e-09 -> "6.18×10⁻⁹" (never "6.18e-09")."""
    mantissa, exponent = f"{x:.{max(significant - 1, 0)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def fmt_value(x: Any, digits: int = 4) -> str:
    """One number as the book prints it: at most `digits` decimals without trailing zeros (a learning rate of
    0.1 prints "0.1", 5e-4 prints "0.0005"), and "6.18×10⁻⁹" for values too small for that (an IM of 7e-05
    must not print as 0.0001) or very large; "—" when missing."""
    if _is_missing(x):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        if x == 0:
            return "0"
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        if abs(x) >= 1e6:
            return fmt_sci(x)
        text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
        if abs(x) < 10 ** -(digits - 1) and abs(float(text) - x) > 0.005 * abs(x):
            return fmt_sci(x)  # the decimals would round it off: show it in powers of ten
        return text
    return str(x)


def _fixed(x: Any, digits: int) -> str:
    """`digits` decimals kept (a column of means reads evenly), unless that rounds the value off (fmt_value)."""
    if isinstance(x, (float, np.floating)) and math.isfinite(x) and x != 0 and abs(x) >= 10 ** -(digits - 1):
        return f"{float(x):.{digits}f}"
    return fmt_value(x, digits)


_DECIMAL = re.compile(r"-?\d+\.\d+")


def _trim_common_zeros(column: list[str]) -> list[str]:
    """A column's numbers keep equal decimals, minus the trailing zeros they all share: [0.1000, 0.0500]
    -> [0.10, 0.05]; [0.9825, 0.9800] stays; a lone 0.1000 -> 0.1. Non-numbers are left alone."""
    nums = [c for c in column if _DECIMAL.fullmatch(c)]
    if not nums:
        return column
    cut = min(len(c) - len(c.rstrip("0")) for c in nums)
    if cut == 0:
        return column
    def trim(c: str) -> str:
        return (c[:-cut].rstrip(".") if _DECIMAL.fullmatch(c) else c)
    return [trim(c) for c in column]


_UNITS = (
    (re.compile(r"(\d)\s?(?:pp|percentage points)\b"), r"\1 pts"),  # "2.1 pp", "2.1pp" -> "2.1 pts"
    (re.compile(r"([+\-−]\d+(?:\.\d+)?) points\b"), r"\1 pts"),  # "+0.6 points" (a signed difference)
)


def unify_units(text: str) -> str:
    """One unit for accuracy differences throughout the book, "pts" (percentage points): "+2.1 pp",
    "+2.1 points" and "2.1 percentage points" all read "+2.1 pts". Only a number's unit is touched ("1000
    points" of a point cloud, unsigned, stays)."""
    for pattern, repl in _UNITS:
        text = pattern.sub(repl, text)
    return text


_PROSE = (
    (re.compile(r"(?<![\\\w])tau ?= ?(-?\d)"), r"τ = \1"),  # "tau=16" -> "τ = 16" (not LaTeX's \tau)
    (re.compile(r"\beta_(similar|dissimilar)\b"), r"η(\1)"),  # the diffusion index's column names
    (re.compile(r"(?<![\w.])(-?\d+\.\d{5,})(?![\w.])"),  # -0.349358 -> -0.349: no six decimals in prose
     lambda m: _three_figures(float(m.group(1)))),
)
#: left as written: code spans, maths, a link's target and an arXiv identifier (2312.15112 is a name, not a number)
_SKIP = re.compile(r"(`[^`]*`|\$\$.*?\$\$|\$[^$\n]+\$|\]\([^)\s]*\)|arXiv:\S+?(?=[\]\s,;)]|$))", re.S)


def _three_figures(x: float) -> str:
    """Three significant figures, never in exponent form (1234.56789 reads 1235, not 1.23e+03)."""
    s = f"{x:.3g}"
    return f"{x:.0f}" if "e" in s else s


def readable_text(text: str) -> str:
    """Prose built from records as a reader should see it: one unit for accuracy differences (`unify_units`),
    "τ = 16" for "tau=16", "η(similar)" for "eta_similar", and no number with six decimals; code spans and
    maths are left as they are."""
    pieces = _SKIP.split(str(text))
    for i in range(0, len(pieces), 2):  # the even pieces are outside code and maths
        piece = unify_units(pieces[i])
        for pattern, repl in _PROSE:
            piece = pattern.sub(repl, piece)
        pieces[i] = piece
    return "".join(pieces)


def fmt_mean_std(mean: float | None, std: float | None = None, digits: int = 4, n: int | None = None) -> str:
    """"mean ± std" (std over seeds/folds); just the mean when std is missing (one run); "—" when no mean.
    `n` appends the number of runs, e.g. "0.9812 ± 0.0010 (n=3)"."""
    if mean is None or _is_missing(mean):
        return MISSING
    out = _fixed(mean, digits)
    if std is not None and not _is_missing(std):
        # at the mean's decimals when the mean is printed fixed and the std does not round to 0 there
        # ("84.45 ± 0.09", not "84.45 ± 8.71×10⁻²"); otherwise as small as it is ("1.00 ± 4×10⁻³")
        same = out == f"{float(mean):.{digits}f}" and round(abs(float(std)), digits) > 0
        out += f" ± {float(std):.{digits}f}" if same else f" ± {_fixed(std, digits)}"
    if n is not None:
        out += f" (n={int(n)})"
    return out


def fmt_series_mean_std(values: Any, digits: int = 2) -> str:
    """"mean ± std" of a column of runs with the same fixed decimals on both sides (a table column reads
    evenly that way); just the value for one run, "—" for none. Non-numbers are skipped."""
    values = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if values.empty:
        return MISSING
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def fmt_pct(rate: Any, digits: int = 2) -> str:
    """A rate (accuracy, agreement) as the chapters print it: 0.9903 -> "99.03%"; "—" when missing."""
    if _is_missing(rate):
        return MISSING
    return f"{100 * float(rate):.{digits}f}%"


RATE_COLUMNS = ("accuracy", "agreement", "train_agreement", "teacher_accuracy", "val_accuracy")
"""Record metrics that are rates: a table of raw records shows them in % (`RATE_FORMATS`), as the chapters do."""
RATE_FORMATS = {c: fmt_pct for c in RATE_COLUMNS}


def fmt_interval(estimate: float, low: float, high: float, digits: int = 3, unit: str = "") -> str:
    """"estimate [low, high]" for an effect and its 95% interval; a non-finite bound prints as "—"."""
    if _is_missing(estimate):
        return MISSING
    u = f" {unit}" if unit else ""
    return f"{fmt_value(estimate, digits)}{u} [{fmt_value(low, digits)}, {fmt_value(high, digits)}]"


def short_device(device: Any) -> str:
    """A device string short enough for a table cell: "cpu: x86_64, 1 threads" -> "CPU (1 thread)",
    "cuda: NVIDIA H100 80GB HBM3" -> "H100"."""
    if _is_missing(device):
        return MISSING
    s = str(device).strip()
    m = re.match(r"cpu\b.*?(\d+)\s*threads?", s, re.I)
    if m:
        n = int(m.group(1))
        return f"CPU ({n} thread{'s' if n != 1 else ''})"
    if s.lower().startswith("cpu"):
        return "CPU"
    m = re.search(r"\b([A-Z]\d{2,4}[A-Za-z]*|RTX\s?\w+|T4|V100|P100|K80)\b", s)
    if m and ("cuda" in s.lower() or "nvidia" in s.lower()):
        return m.group(1)
    return s if len(s) <= 16 else s[:15] + "…"


_DEVICE_IN_TEXT = re.compile(r"(cpu|cuda|mps): [^;,()]*?(?:, \d+ threads?)?(?=$|[;.)]|, (?!\d+ thread))")


def shorten_devices(text: str) -> str:
    """Every device string inside free text (a verdict's scale, a caption) shortened with `short_device`:
    "profile `cpu` on cpu: x86_64, 1 threads" -> "profile `cpu` on CPU (1 thread)"."""
    return _DEVICE_IN_TEXT.sub(lambda m: short_device(m.group(0)), str(text))


_GREEK = {"τ": "tau", "α": "alpha", "η": "eta", "ε": "epsilon"}


def claim_anchor(claim: str, words: int = 8) -> str:
    """The HTML id of a claim's verdict on its chapter page, from the claim's text: "claim-" and its first
    `words` words as a slug ("At tau = 1, a student ..." -> "claim-at-tau-1-a-student-distilled-from-a").
    The scorecard and the synthesis page link to it, so it is computed in one place from the text both share."""
    text = str(claim).lower()
    for greek, latin in _GREEK.items():  # the page may show "τ = 1" where the claim says "tau = 1": one slug
        text = text.replace(greek, latin)
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(text.split()[:words])).strip("-")
    if not slug:
        raise ValueError(f"claim_anchor: a claim needs words, got {claim!r}")
    return "claim-" + slug


def readable(name: Any) -> str:
    """A column name as a header: "train_agreement" -> "train agreement" (a record's key is not prose)."""
    return str(name).replace("_", " ")


# ", paired t 95%, n=5" or ", two-level t over outer-unit means 95%, n=6 (6 outer x 2 inner; sd ...)": a
# summary (a verdict box, the scorecard) keeps the interval and n; the method is named in the claim's evidence.
_METHOD_TAIL = re.compile(r"(\]),\s[^\[\];()]*?\d+%,\s(n=\d+)(?:\s\(\d+ outer x \d+ inner[^()]*\))?")


def short_interval(text: str) -> str:
    """An effect with its intervals' method names cut ("+2.0 pts [1.0, 3.0], n=5"), for summaries."""
    return _METHOD_TAIL.sub(r"\1, \2", text)
