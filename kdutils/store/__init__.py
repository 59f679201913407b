"""Records and where they come from: the results store (`store`), atomic file io (`io`, also used by data
caches), provenance of a run (`provenance`) and the named profiles (`profiles`).
"""
