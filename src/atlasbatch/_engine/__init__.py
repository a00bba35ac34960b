"""One run's workers: submit batches within the queue cap, poll, download, delete, all
driven by and recorded in the ledger before anything is sent. Talks to the server only
through ``_http``; stores result files through ``_outputs``."""
