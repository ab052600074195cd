"""A WebSocket echo server in a process of its own, for the WebSocket-client benchmark.

``python -m benchmarks._ws_echo [--cpu N]`` binds 127.0.0.1 on a free port, prints
``READY http://127.0.0.1:PORT`` and sends every binary message back as it came, until SIGTERM.
The ``websockets`` library serves: the same server for every client measured.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from websockets.asyncio.server import ServerConnection, serve

from ._common import pin_to


async def _echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def _main() -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(_echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"READY http://127.0.0.1:{port}", flush=True)
        await stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu", type=int, default=None)
    pin_to(parser.parse_args().cpu)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
