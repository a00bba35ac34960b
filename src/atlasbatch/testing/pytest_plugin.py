"""Pytest fixtures for the ATLAS emulator (work in progress)."""
