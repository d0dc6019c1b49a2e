"""``serve --workers N``: uvicorn's multiprocess supervisor, with Nagle's algorithm off.

Why not ``uvicorn.run(..., workers=N)``: uvicorn (0.54) binds the shared listening socket with
``proto`` 0; accepted connections inherit it, and asyncio turns ``TCP_NODELAY`` on only for
sockets that say ``IPPROTO_TCP``. Every keep-alive request after the first then waits for the
client's delayed ACK: ~40 ms on Linux (uvicorn issue #3149; measured here: one client's p50
4 ms with one worker, 48 ms with two). The same socket, re-wrapped as TCP, fixes it.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def tcp_listener(config: uvicorn.Config) -> socket.socket:
    """``config``'s bound socket, marked ``IPPROTO_TCP`` when it is a TCP one."""
    sock = config.bind_socket()
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto:
        return sock
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def run_workers(app: str, workers: int, **options: Any) -> None:
    """Serve the import string ``app`` (an app factory) from ``workers`` processes."""
    config = uvicorn.Config(app, factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[tcp_listener(config)]).run()
