"""`--shard K/N` for the chapters' two-process run commands: one parser, so every command reads and refuses
a shard the same way."""
from __future__ import annotations

import argparse


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N) with 0 <= K < N; an argparse error naming the text otherwise."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must be K/N with integers, e.g. 0/2; got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n
