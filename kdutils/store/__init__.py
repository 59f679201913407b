"""Records and where they come from: the results store (`store`), atomic file io (`io`, also used by data
caches), provenance of a run (`provenance`), the named profiles (`profiles`), one writer per run (`locks`)
and the notes of caches rebuilt on the way (`recovery`).
"""
