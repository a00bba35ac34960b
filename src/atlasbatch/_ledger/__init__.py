"""The run ledger: one SQLite file per run, the source of truth. Every input row, every
remote task and every outcome is written here before the effect it records; a resume
reads only this."""
