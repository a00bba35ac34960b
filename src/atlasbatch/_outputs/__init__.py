"""The files a run leaves: result files (parsed, checked, written atomically), their names,
the photometry table that grows during a run, outcomes.csv, the nightly table, plots and
the merge of refreshed light curves. Reads the ledger; never talks to the server."""
