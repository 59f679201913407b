"""The shared decision rules: a declared `Claim`, the symmetric rule `decide`, one `combine` for composite
claims, the verdict of a claim from its parts and gates (`judge`), and the stability check on seed halves.

The rules in plain words (the methods page says the same, with a worked example):

- A claim is declared in code before its runs: its text as the paper states it, the direction of the effect,
  the smallest effect that would count (`min_effect`, pre-registered from the paper's own numbers), its unit,
  its parts (for a composite claim) and which part is its core, and the gates that make it testable.
- `decide`, on the paired 95% t-interval of the effect (A - B over seeds/folds):
  "greater"   reproduced when the interval lies wholly above the reference (0, or the claim's threshold);
              not reproduced when it lies wholly below the reference plus `min_effect` (the other side of 0,
              or an effect surely smaller than the smallest that counts); inconclusive otherwise.
  "less"      the mirror image.
  "not_above" ("does not help", a non-superiority test): reproduced when the interval's upper end lies below
              the reference plus the margin (`min_effect` > 0); not reproduced when it lies wholly above the
              reference (it helps); inconclusive otherwise. "The interval contains 0" is never support.
  "not_below" ("at least as good", non-inferiority): the mirror image of "not_above".
- `combine`: all parts reproduced -> reproduced; some reproduced, the rest inconclusive (or not yet run) ->
  partly; a contradicted part beside a reproduced one -> mixed, naming it; a contradicted core part, or
  contradicted parts with none reproduced -> not reproduced; a core part (or every part) not testable -> not
  testable, while a part that is not testable and not core does not count (it is named in the reason); no
  part at all -> not yet run.
- `judge`: a failed gate -> "not testable at this scale" with the gate's numbers, never a verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping, Sequence

from kdutils.verdicts.gates import Gate
from kdutils.verdicts.power import Power, power_of
from kdutils.verdicts.stats import Interval, paired_difference
from kdutils.verdicts.verdict import (INCONCLUSIVE, MIXED, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY,
                                      REPRODUCED, Decision, Verdict)

CLAIM_DIRECTIONS = ("greater", "less", "not_above", "not_below")
SUPPORTING = (REPRODUCED, PARTLY, MIXED)
CONTRADICTING = (NOT_REPRODUCED, MIXED)


@dataclass(frozen=True)
class Claim:
    """A claim as declared before its runs. `min_effect` (>= 0, in `unit`) is the smallest effect that would
    count for "greater"/"less" and the margin for "not_above"/"not_below" (there it must be > 0); `threshold`
    is a value the claim itself names for the quantity (e.g. 0.75 of a gap), else 0 is the reference;
    `source` says where `min_effect` comes from. `parts` are sub-claims (each with its `key`), `core` the keys
    of the parts without which the claim falls; `gates` the names of the gates it needs; `scored` False for a
    chapter's own check that is not a paper claim."""

    text: str
    direction: str = "greater"
    min_effect: float = 0.0
    unit: str = ""
    threshold: float | None = None
    source: str = ""
    parts: tuple["Claim", ...] = ()
    core: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    key: str = ""
    scored: bool = True

    def __post_init__(self) -> None:
        if self.direction not in CLAIM_DIRECTIONS:
            raise ValueError(f"direction must be one of {CLAIM_DIRECTIONS}, got {self.direction!r}")
        if not (math.isfinite(self.min_effect) and self.min_effect >= 0):
            raise ValueError(f"min_effect must be a finite number >= 0, got {self.min_effect!r}")
        if self.direction in ("not_above", "not_below") and self.min_effect <= 0:
            raise ValueError(f"a {self.direction!r} claim needs a margin min_effect > 0 (an interval that merely "
                             "contains 0 is no evidence of no effect)")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number or None, got {self.threshold!r}")
        keys = [p.key for p in self.parts]
        if any(not k for k in keys) or len(set(keys)) != len(keys):
            raise ValueError(f"every part needs a distinct key, got {keys}")
        unknown = set(self.core) - set(keys)
        if unknown:
            raise ValueError(f"core names parts that do not exist: {sorted(unknown)}; parts are {keys}")

    def part(self, key: str) -> "Claim":
        for p in self.parts:
            if p.key == key:
                return p
        raise KeyError(f"no part {key!r}; parts are {[p.key for p in self.parts]}")


def _flip(iv: Interval) -> Interval:
    return replace(iv, mean=-iv.mean, low=-iv.high, high=-iv.low)


def decide(interval: Interval, direction: str = "greater", min_effect: float = 0.0,
           threshold: float | None = None, unit: str = "") -> Decision:
    """The symmetric rule on one interval (see the module docstring). `min_effect` and `threshold` as in
    `Claim`; `unit` only dresses the reason."""
    probe = Claim("", direction, min_effect, threshold=threshold)  # validates the arguments in one place
    if not interval.estimable:
        return Decision(INCONCLUSIVE, f"too few paired runs for an interval (n={interval.n})")
    ref = 0.0 if threshold is None else float(threshold)
    u = unit if unit == "%" else f" {unit}" if unit else ""
    if probe.direction in ("less", "not_below"):  # mirror onto "greater" / "not_above"
        iv, ref, mirrored = _flip(interval), -ref, True
    else:
        iv, mirrored = interval, False
    show = (lambda v: f"{-v:g}{u}") if mirrored else (lambda v: f"{v:g}{u}")
    above, below = ("below", "above") if mirrored else ("above", "below")
    m = probe.min_effect
    if probe.direction in ("greater", "less"):
        floor = ref + m
        if iv.high < floor:
            if iv.high < ref or m == 0:
                return Decision(NOT_REPRODUCED, f"the interval lies wholly {below} {show(ref)} (the other side)")
            return Decision(NOT_REPRODUCED, f"the interval lies wholly {below} the minimum effect ({show(floor)}): "
                                            "any effect is smaller than the smallest that counts")
        if iv.low > ref:
            return Decision(REPRODUCED, f"the interval lies wholly {above} {show(ref)}")
        return Decision(INCONCLUSIVE, f"the interval contains {show(ref)}"
                        + (f" and reaches the minimum effect {show(floor)}" if m else ""))
    # not_above / not_below: the margin test and its symmetric failure
    if iv.high < ref + m:
        return Decision(REPRODUCED, f"the interval lies wholly {below} the margin {show(ref + m)}")
    if iv.low > ref:
        return Decision(NOT_REPRODUCED, f"the interval lies wholly {above} {show(ref)}")
    return Decision(INCONCLUSIVE, f"the interval reaches the margin {show(ref + m)} and contains {show(ref)}")


@dataclass(frozen=True)
class Finding:
    """One judged part: its key, label and reason, and, for a comparison, the interval and its power."""

    key: str
    label: str
    reason: str
    interval: Interval | None = None
    power: Power | None = None
    core: bool = False
    effect: str = ""  # the interval as the page shows it (units, scale)

    def describe(self) -> str:
        eff = f"{self.effect}; " if self.effect else ""
        return f"{self.key}: {self.label} ({eff}{self.reason})"


def find(claim: Claim, interval: Interval, sd: float | None = None, effect: str = "", core: bool = False) -> Finding:
    """Judge one claim (or part) on its interval, with the power of the comparison at its n."""
    d = decide(interval, claim.direction, claim.min_effect, claim.threshold, claim.unit)
    sd = interval.sd if sd is None else sd
    pw = (power_of(sd, interval.n, claim.min_effect or None, claim.unit) if interval.n >= 2 and math.isfinite(sd)
          else None)
    return Finding(claim.key or "claim", d.label, d.reason, interval, pw, core, effect)


def compare(claim: Claim, a: Mapping, b: Mapping, effect_fmt: Callable[[Interval], str] | None = None) -> Finding:
    """Judge claim "A vs B" on the paired difference A - B over the keys (seeds/folds) both have."""
    iv = paired_difference(a, b)
    return find(claim, iv, effect=effect_fmt(iv) if effect_fmt else "")


def gated(finding: Finding, part_gates: Sequence[Gate]) -> Finding:
    """A part that needs its own gates (e.g. its arms at one learning rate): "not testable", with the failing
    gates' account, when one fails; otherwise the finding unchanged."""
    bad = [g for g in part_gates if not g.passed]
    if not bad:
        return finding
    return replace(finding, label=NOT_TESTABLE, reason="; ".join(g.describe() for g in bad))


def _as_findings(parts: Mapping[str, str | Decision | Finding] | Sequence[Finding]) -> list[Finding]:
    if isinstance(parts, Mapping):
        out = []
        for k, v in parts.items():
            if isinstance(v, Finding):
                out.append(replace(v, key=k))
            elif isinstance(v, Decision):
                out.append(Finding(k, v.label, v.reason))
            else:
                out.append(Finding(k, str(v), ""))
        return out
    return list(parts)


def _names(fs: Iterable[Finding], labelled: bool = False) -> str:
    """The parts' keys; with `labelled`, a part that is only partly reproduced or mixed says so."""
    return ", ".join(f.key + (f" ({f.label})" if labelled and f.label in (PARTLY, MIXED) else "") for f in fs)


def combine(parts: Mapping[str, str | Decision | Finding] | Sequence[Finding], core: Iterable[str] = ()) -> Decision:
    """One label for a composite claim from its parts' labels (a mapping key -> label/Decision/Finding, or a
    list of Findings); `core` names the parts the claim cannot do without (a Finding's own `core` flag counts
    too). The reason names the parts that decided it."""
    fs = _as_findings(parts)
    core = set(core) | {f.key for f in fs if f.core}
    if not fs:
        return Decision(NOT_YET_RUN, "no part has been judged")
    if all(f.label == NOT_YET_RUN for f in fs):
        return Decision(NOT_YET_RUN, "no part has been run")
    untestable = [f for f in fs if f.label == NOT_TESTABLE]
    if any(f.key in core for f in untestable):
        return Decision(NOT_TESTABLE, f"core part not testable: {_names(f for f in untestable if f.key in core)}")
    judged = [f for f in fs if f.label not in (NOT_TESTABLE, NOT_YET_RUN)]
    if not judged:
        return Decision(NOT_TESTABLE, f"no part is testable ({_names(untestable)})")
    skipped = [f for f in fs if f not in judged]
    note = f"; not counted: {_names(skipped)} ({', '.join(sorted({f.label for f in skipped}))})" if skipped else ""
    against = [f for f in judged if f.label in CONTRADICTING]
    support = [f for f in judged if f.label in SUPPORTING]
    core_against = [f for f in against if f.key in core and f.label == NOT_REPRODUCED]
    if core_against:
        return Decision(NOT_REPRODUCED, f"core part contradicted: {_names(core_against)}{note}")
    if any(f.label == MIXED for f in judged) or (against and support):
        return Decision(MIXED, f"contradicted: {_names(against, True)}; reproduced: {_names(support, True)}{note}")
    if against:
        return Decision(NOT_REPRODUCED, f"contradicted: {_names(against)}, no part reproduced{note}")
    if all(f.label == REPRODUCED for f in judged) and not any(f.label == NOT_YET_RUN for f in skipped):
        return Decision(REPRODUCED, f"every testable part reproduced ({_names(judged)}){note}")
    if support:
        rest = [f for f in fs if f not in support]
        return Decision(PARTLY, f"reproduced: {_names(support, True)}; not shown: {_names(rest)}"
                        + (f" ({', '.join(sorted({f.label for f in rest}))})" if rest else ""))
    return Decision(INCONCLUSIVE, f"no part is conclusive ({_names(judged)}){note}")


@dataclass(frozen=True)
class Judgement:
    """A claim's label with everything the page shows: the gates first, then the parts and why."""

    claim: Claim
    label: str
    reason: str
    gates: tuple[Gate, ...] = ()
    parts: tuple[Finding, ...] = ()


def judge(claim: Claim, findings: Sequence[Finding] | Finding, gates: Sequence[Gate] = ()) -> Judgement:
    """The claim's verdict: "not testable" with the failing gates' numbers if a gate failed; else its single
    finding's label, or `combine` over its parts (core parts as the claim declares)."""
    fs = [findings] if isinstance(findings, Finding) else list(findings)
    gates = tuple(gates)
    bad = [g for g in gates if not g.passed]
    if bad:
        return Judgement(claim, NOT_TESTABLE, "; ".join(g.describe() for g in bad), gates, tuple(fs))
    if len(fs) == 1 and not claim.parts:
        return Judgement(claim, fs[0].label, fs[0].reason, gates, tuple(fs))
    core = set(claim.core)
    fs = [replace(f, core=f.core or f.key in core) for f in fs]
    d = combine(fs)
    return Judgement(claim, d.label, d.reason, gates, tuple(fs))


# ------------------------------------------------------------------------------------------------- stability
def halves(keys: Iterable) -> tuple[tuple, tuple]:
    """Two disjoint halves of the seeds/folds: sorted, alternately (0, 2, 4, ... and 1, 3, ...), so that
    neither half is "the early seeds"."""
    ks = sorted(set(keys), key=repr)
    return tuple(ks[0::2]), tuple(ks[1::2])


@dataclass(frozen=True)
class Stability:
    """The label recomputed on each half of the seeds: "holds" when both halves give the full label,
    "weaker" when a half is only inconclusive or not testable (fewer seeds: wider intervals, gates that cannot
    pass) but none contradicts it,
    "changes" otherwise (a half contradicts the full label, or says something stronger)."""

    full: str
    first: str
    second: str
    first_keys: tuple
    second_keys: tuple

    @property
    def status(self) -> str:
        halves_ = (self.first, self.second)
        if all(h == self.full for h in halves_):
            return "holds"
        if all(h in (self.full, INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN) for h in halves_):
            return "weaker"
        return "changes"

    def describe(self) -> str:
        keys = lambda ks: ", ".join(map(str, ks))  # noqa: E731
        return (f"{self.status} on halves of the seeds ({keys(self.first_keys)}: {self.first}; "
                f"{keys(self.second_keys)}: {self.second})")


def stability(keys: Iterable, label_on: Callable[[set], str], full: str | None = None) -> Stability:
    """Recompute a verdict on two disjoint halves of `keys`: `label_on(subset)` must return the label computed
    from the runs of those seeds only. `full` defaults to `label_on(all keys)`."""
    ks = set(keys)
    a, b = halves(ks)
    full = label_on(ks) if full is None else full
    return Stability(full, label_on(set(a)), label_on(set(b)), a, b)


def subset(scores: Mapping, keys: Iterable) -> dict:
    """The entries of a per-seed mapping whose key is in `keys` (for `stability`'s label_on functions)."""
    ks = set(keys)
    return {k: v for k, v in scores.items() if k in ks}


def to_verdict(j: Judgement, evidence: str, scale: str, effect: str = "",
               stability_: Stability | None = None, code: str = "") -> Verdict:
    """The chapter-facing `Verdict` of a judgement: its label, the gates and parts it rests on, the stability."""
    return Verdict(j.claim.text, j.label, evidence, scale, effect, parts=j.parts, gates=j.gates,
                   stability=stability_, reason=j.reason, scored=j.claim.scored, code=code)


__all__ = ["CLAIM_DIRECTIONS", "Claim", "Finding", "Judgement", "Stability", "combine", "compare", "decide",
           "find", "gated", "halves", "judge", "stability", "subset", "to_verdict"]
