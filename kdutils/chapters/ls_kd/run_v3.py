"""Command line for LS-KD recipe v3: ``python -m kdutils.chapters.ls_kd.run_v3 --profile cpu --shard K/N``
trains (resumably) shard K of N, counted from 1 (`kdutils.sweeps.shards`; the old 0-based ``--shard 0/2`` still reads
as ``1/2``, with a note); ``--dry-run`` prints what is still to train and its cost, and trains nothing.

The `cpu` run is two single-thread processes, started together:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.ls_kd.run_v3 --profile cpu --shard 1/2
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m kdutils.chapters.ls_kd.run_v3 --profile cpu --shard 2/2

Each trains disjoint runs: its share of the teachers' rate selections (one LS value each), then its teacher pairs
(the k-th pair of the recipe's teacher seeds to shard k mod N) with their students, and its share of the student
alone's seeds; shard 1/N also runs the common-rate selection, which the others wait for. Killed, either one is
restarted with the same command and skips what is recorded.
"""
from __future__ import annotations

import sys

from kdutils.sweeps.shards import command_parser, shard_of


def main(argv: list[str] | None = None) -> int:
    from kdutils.chapters.ls_kd.recipe_v3 import RECIPES_V3

    ap = command_parser("python -m kdutils.chapters.ls_kd.run_v3", (__doc__ or "").split("\n")[0], RECIPES_V3,
                        zero_based_alias=True)
    args = ap.parse_args(argv)
    shard = shard_of(args, ap)
    if args.dry_run:
        from kdutils.chapters.ls_kd.cost_v3 import dry_run_text

        print(dry_run_text(args.profile, shard.count))
        return 0
    from kdutils.chapters.ls_kd.plan_v3 import run_shard

    p = run_shard(args.profile, shard.position, shard.count)
    print(f"shard {shard} of LS-KD recipe v3 ({args.profile}) done; common rate {p.common_lr}; "
          f"still missing: {', '.join(p.missing) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
