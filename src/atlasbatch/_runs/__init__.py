"""A run directory's life: open or resume it (ledger, lock, registry), plan a refresh, add
control positions, cancel or clean up what it left on the server, and write its outputs at
the end. It drives the ``_engine`` and calls ``_outputs``; the engine never calls it."""
