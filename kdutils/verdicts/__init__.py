"""Verdicts: paired intervals (`stats`) and the rules that turn them into a claim's label (`verdict`), used by
every chapter so that one claim is judged like another.
"""
