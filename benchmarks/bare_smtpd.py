"""The baseline: a bare aiosmtpd server that keeps each message's bytes in a Python list.

Run by ingest.py. Prints ``PORT <n>`` once listening; exits on SIGTERM or when stdin closes.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP


class ListHandler:
    """Accepts everything and appends the raw bytes to a list."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or b"")
        return "250 OK"


async def main() -> None:
    loop = asyncio.get_running_loop()
    handler = ListHandler()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="bare", decode_data=False, loop=loop), "127.0.0.1", 0
    )
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)
    await stop.wait()
    print("STORED", len(handler.messages), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
