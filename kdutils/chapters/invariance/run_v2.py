"""Command line for invariance recipe v2: ``python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard K/N``
trains (resumably) shard K of N, counted from 1 (`kdutils.sweeps.shards`; the old 0-based ``--shard 0/2`` still
reads as ``1/2``, with a note); ``--dry-run`` prints the design, what is still to train and its cost, and trains
nothing.

The `cpu` run is two single-thread processes, started together (each trains whole pairs, so they share no run):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard 1/2
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard 2/2

Shard 1/2: DGCNN -> DeepSets (both students) and the rank-order check; shard 2/2: ResNet -> MLP and DeepSets -> MLP.
Killed, either one is restarted with the same command and skips what is recorded.
"""
from __future__ import annotations

import sys

from kdutils.sweeps.shards import command_parser, shard_of


def main(argv: list[str] | None = None) -> int:
    from kdutils.chapters.invariance.plan_v2 import SHARDS, run_shard

    ap = command_parser("python -m kdutils.chapters.invariance.run_v2", (__doc__ or "").split("\n")[0],
                        ("smoke", "cpu"), counts=SHARDS, zero_based_alias=True)
    args = ap.parse_args(argv)
    shard = shard_of(args, ap)
    if args.dry_run:
        from kdutils.chapters.invariance.cost_v2 import dry_run_text

        print(dry_run_text(args.profile, shard.count))
        return 0
    done = run_shard(args.profile, shard.position, shard.count)
    print(f"shard {shard} of invariance recipe v2 ({args.profile}) done: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
