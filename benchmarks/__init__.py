"""Benchmarks: atlasbatch against the guide's sequential loop and a naive ``asyncio.gather``.

Run ``python benchmarks/run.py --quick`` (see ``benchmarks/README.md``).
"""
