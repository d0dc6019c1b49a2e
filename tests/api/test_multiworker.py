"""``serve --workers N`` hands its workers a listening socket that says TCP, so that asyncio
turns Nagle's algorithm off on every accepted connection (api/multiworker.py): uvicorn's own
``bind_socket`` leaves ``proto`` 0 and keep-alive answers then wait ~40 ms for a delayed ACK."""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from adflywheel.api.multiworker import tcp_listener


def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted by asyncio on ``listener``."""
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    return seen[0]


def _config() -> uvicorn.Config:
    return uvicorn.Config("adflywheel.api.app:worker_app", factory=True, host="127.0.0.1", port=0)


def test_uvicorns_own_listener_leaves_nagle_on() -> None:
    # The bug this works around (uvicorn #3149): if uvicorn fixes it, this fails and the
    # wrapper can go.
    listener = _config().bind_socket()
    assert listener.proto == 0
    assert _nodelay_of_accepted(listener) == 0


def test_the_workers_listener_turns_nagle_off() -> None:
    listener = tcp_listener(_config())
    assert listener.proto == socket.IPPROTO_TCP
    assert _nodelay_of_accepted(listener) == 1
