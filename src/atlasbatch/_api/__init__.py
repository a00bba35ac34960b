"""The library API: ``Session`` for asyncio code, ``fetch_photometry`` for scripts, and the
``RunReport`` they give back. A front end, beside ``_cli``: it runs a ``_runs`` directory (or
none) through the ``_engine``; it never prints."""
