"""The emulator as the benchmark starts it: the stock one, with TCP_NODELAY on its sockets.

``atlasbatch.testing.Emulator._bind`` makes its listening socket with
``socket.socket(family, SOCK_STREAM)``, whose ``proto`` is 0; asyncio only turns Nagle's
algorithm off for sockets whose ``proto`` is ``IPPROTO_TCP``, so every response (headers and
body are two writes) waits for the client's delayed ACK: about 44 ms per request on a kept-
alive loopback connection instead of well under 1 ms. In a benchmark with time scaled 10x
that is 0.44 s of real time per request, an artefact of the test server, so the benchmark
binds the socket itself with ``IPPROTO_TCP`` (and ``TCP_NODELAY``, which accepted sockets
inherit on Linux). The same one-line fix belongs in ``_server.py``; once it is there this
subclass changes nothing. ``--stock-emulator`` runs without it.
"""

from __future__ import annotations

import socket

from atlasbatch.testing import Emulator, EmulatorConfig

__all__ = ["make_emulator"]


class _NoDelayEmulator(Emulator):
    def _bind(self) -> socket.socket:
        host = self.config.host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, self.config.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock


USE_STOCK = False


def make_emulator(config: EmulatorConfig) -> Emulator:
    """An emulator for one row (not started); the stock class when asked or when it changed."""
    if USE_STOCK or not hasattr(Emulator, "_bind"):
        return Emulator(config)
    return _NoDelayEmulator(config)
