"""Run atlasbatch as ``python -m atlasbatch``."""

from atlasbatch.cli import main

raise SystemExit(main())
