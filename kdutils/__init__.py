"""kdutils: the package behind the reproduction book. `chapters/` holds one folder per paper; everything
else is the shared core (data, models, losses, training, store, sweeps, verdicts, report, bench), which names no
paper. Imports go downwards only: chapters -> core.
"""
