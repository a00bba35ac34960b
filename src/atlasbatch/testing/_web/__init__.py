"""The emulator's HTTP side: the DRF request cycle (negotiation, authentication,
throttles), the routes under ``/forcedphot``, result and image downloads, and the outermost
ASGI layer that injects faults. Everything it knows is in ``_state``."""
