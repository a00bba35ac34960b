"""The ``atlasbatch`` command line (placeholder until the commands land)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``atlasbatch`` command."""
    del argv
    return 0
