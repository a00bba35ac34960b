"""In-process emulator of the ATLAS forced-photometry server (work in progress)."""
