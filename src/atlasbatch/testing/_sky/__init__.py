"""What the emulated telescope sees: deterministic synthetic light curves on ATLAS's
cadence, moving stars, observing conditions and bad measurements, image stamps."""
