"""Verdicts: paired intervals and rank correlations (`stats`), labels and the `Verdict` a chapter returns
(`verdict`), declared claims with the symmetric rules, `combine` and stability (`rules`), gates measured from
records (`gates`) and power (`power`): one set of rules, so that one claim is judged like another.
"""
