"""The science on light curves, pure functions of DataFrames: derived photometry (AB
magnitudes, limits, flags), nightly means with ATClean's cuts and sigma clipping, the
control cut, and which observing night an exposure belongs to."""
