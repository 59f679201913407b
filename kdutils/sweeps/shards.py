"""`--shard K/N`: how every chapter's run command splits its work over N processes, K counted from 1 as people
count ("shard 1/2 and 2/2"). One parser and one option, so that every command reads, refuses and prints a shard
the same way.

Older spellings keep working, each with one line on stderr that gives the new one (READMEs, issue notes and
running processes use them), and each selects exactly the work it selected before:

- ``--part K --of N`` (a campaign's, K from 0): ``--shard K+1/N``;
- ``--shard 0/N`` (the invariance v2 and LS-KD v3 commands counted from 0): ``--shard 1/N``. Their old
  ``--shard 1/2`` cannot be told from the new one and now means the first shard: the note on ``0/N`` says so;
- ``--set shard K/N`` of ``python -m kdutils run`` (already from 1): ``--shard K/N``.

Internally a chapter deals its work to positions 0..N-1 (`Shard.position`), as it did before.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Collection, TextIO


class ShardError(argparse.ArgumentTypeError, ValueError):
    """A shard that cannot be read or is out of range: argparse prints its message as the usage error, and a
    caller outside argparse catches it as a ValueError."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, with 1 <= index <= count."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 1 <= self.index <= self.count):
            raise ShardError(f"a shard is K/N with 1 <= K <= N, got {self.index!r}/{self.count!r}")

    @property
    def position(self) -> int:
        """Where this shard's work sits in a list of `count` shares (0-based)."""
        return self.index - 1

    @classmethod
    def at(cls, position: int, count: int) -> "Shard":
        """The shard whose share is `position` (0-based) of `count`."""
        return cls(position + 1, count)

    @classmethod
    def parse(cls, text: "str | Shard", counts: Collection[int] | None = None) -> "Shard":
        return parse_shard(text, counts)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def every(cls, count: int) -> "list[Shard]":
        """Shards 1/count .. count/count, in order (the commands a dry run prints)."""
        return [cls(i, count) for i in range(1, count + 1)]


ALL = Shard(1, 1)


def parse_shard(text: "str | Shard", counts: Collection[int] | None = None) -> Shard:
    """"K/N" -> Shard(K, N) with 1 <= K <= N (and N in `counts` where given); else a ShardError naming the
    text and what is allowed."""
    if isinstance(text, Shard):
        shard = text
    else:
        try:
            k, n = (int(x) for x in str(text).split("/"))
        except ValueError:
            raise ShardError(f"--shard must be K/N with whole numbers, e.g. 1/2; got {text!r}") from None
        if not (n >= 1 and 1 <= k <= n):
            raise ShardError(f"--shard K/N counts from 1 (1 <= K <= N, e.g. 1/2 and 2/2); got {text!r}")
        shard = Shard(k, n)
    if counts is not None and shard.count not in counts:
        raise ShardError(f"--shard K/N: N must be one of {sorted(counts)} here; got {str(text)!r}")
    return shard


def say_old_spelling(old: str, new: Shard, extra: str = "", stream: TextIO | None = None) -> None:
    """The one line an old spelling prints: what it now is."""
    print(f"kdutils: {old} is the old spelling; use --shard {new}{extra}", file=stream or sys.stderr, flush=True)


def parse_shard_or_zero_based(text: str, counts: Collection[int] | None = None) -> Shard:
    """`parse_shard`, plus the old 0-based "0/N" as shard 1/N (with its note); for the commands that used to
    count from 0."""
    parts = str(text).split("/")
    if len(parts) == 2 and parts[0].strip() == "0":
        try:
            n = int(parts[1])
        except ValueError:
            n = 0
        if n >= 1:
            new = parse_shard(f"1/{n}", counts)
            say_old_spelling(f"--shard {text} (counted from 0)", new,
                             f" (shards count from 1: the old --shard 1/{n} is --shard 2/{n})" if n >= 2 else "")
            return new
    return parse_shard(text, counts)


def from_part(part: int | None, of: int | None, stream: TextIO | None = None) -> Shard | None:
    """The shard of the old ``--part K --of N`` (K from 0; either may be left out: part 0, of 1), with its note;
    None where neither is given."""
    if part is None and of is None:
        return None
    k, n = (0 if part is None else part), (1 if of is None else of)
    if not (n >= 1 and 0 <= k < n):
        raise ShardError(f"--part K --of N counts K from 0 (0 <= K < N); got --part {k} --of {n}")
    new = Shard.at(k, n)
    say_old_spelling(f"--part {k} --of {n}", new, stream=stream)
    return new


def add_shard_option(ap: argparse.ArgumentParser, *, counts: Collection[int] | None = None,
                     zero_based_alias: bool = False, part_alias: bool = False) -> None:
    """``--shard K/N`` (default 1/1: all the work) on `ap`, with the old spellings this command had."""
    parse = parse_shard_or_zero_based if zero_based_alias else parse_shard
    ap.add_argument("--shard", type=lambda t: parse(t, counts), default=None, metavar="K/N",
                    help="train shard K of N, counted from 1 (1/2 and 2/2 in two processes); default 1/1: all"
                         + (f"; N one of {sorted(counts)}" if counts else ""))
    if part_alias:
        ap.add_argument("--part", type=int, default=None, help="old spelling, counted from 0: --part K --of N is "
                                                               "--shard K+1/N")
        ap.add_argument("--of", type=int, default=None, help="old spelling: see --part")


def command_parser(prog: str, description: str, profiles: Collection[str] | None = None, *,
                   counts: Collection[int] | None = None, zero_based_alias: bool = False,
                   part_alias: bool = False) -> argparse.ArgumentParser:
    """The options every split run command has: ``--profile`` (default cpu), ``--shard K/N`` (with this command's
    old spellings) and ``--dry-run``; read them back with ``shard_of(ap.parse_args(argv), ap)``."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--profile", default="cpu", choices=sorted(profiles) if profiles is not None else None)
    add_shard_option(ap, counts=counts, zero_based_alias=zero_based_alias, part_alias=part_alias)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its cost; train nothing")
    return ap


def shard_of(args: argparse.Namespace, ap: argparse.ArgumentParser | None = None) -> Shard:
    """The shard `add_shard_option`'s options name (1/1 where none is given); the old and the new spelling
    together are refused (through `ap.error` where given)."""
    new = getattr(args, "shard", None)
    try:
        old = from_part(getattr(args, "part", None), getattr(args, "of", None))
    except ShardError as err:
        if ap is not None:
            ap.error(str(err))
        raise
    if new is not None and old is not None:
        msg = f"--shard {new} and --part/--of both given; give --shard only"
        if ap is not None:
            ap.error(msg)
        raise ShardError(msg)
    return new or old or ALL


__all__ = ["ALL", "Shard", "ShardError", "add_shard_option", "command_parser", "from_part", "parse_shard",
           "parse_shard_or_zero_based", "say_old_spelling", "shard_of"]
