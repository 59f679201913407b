"""Command line for invariance recipe v2: ``python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard K/N``
trains (resumably) shard K of N; ``--dry-run`` prints the design, what is still to train and its cost, and trains
nothing.

The `cpu` run is two single-thread processes, started together (each trains whole pairs, so they share no run):

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard 0/2
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.invariance.run_v2 --profile cpu --shard 1/2

Shard 0: DGCNN -> DeepSets (both students) and the rank-order check; shard 1: ResNet -> MLP and DeepSets -> MLP.
Killed, either one is restarted with the same command and skips what is recorded.
"""
from __future__ import annotations

import argparse
import sys

from kdutils.sweeps.shards import parse_shard


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kdutils.chapters.invariance.run_v2",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--profile", default="cpu", choices=("smoke", "cpu"))
    ap.add_argument("--shard", type=parse_shard, default=(0, 1), help="K/N: train shard K of N (N = 1 or 2)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its cost; train nothing")
    args = ap.parse_args(argv)
    k, n = args.shard
    if args.dry_run:
        from kdutils.chapters.invariance.cost_v2 import dry_run_text

        print(dry_run_text(args.profile, n))
        return 0
    from kdutils.chapters.invariance.plan_v2 import run_shard

    done = run_shard(args.profile, k, n)
    print(f"shard {k}/{n} of invariance recipe v2 ({args.profile}) done: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
