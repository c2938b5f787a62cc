"""The ceiling of a CPython server on this machine: a ZooKeeper-framed server that does nothing.

    .venv/bin/python bench/python_floor.py PORT      # serve on 127.0.0.1:PORT until killed

It speaks just enough of the protocol for bench/client_bench.py (`--floor` runs it beside zkref and Java): `srvr`
answers "Mode: standalone", a ConnectRequest gets a ConnectResponse, and every other request gets a reply header
with its xid and error 0 followed by 72 zero bytes (the size of a small getData reply: a 4-byte data length and a
Stat). It keeps no tree, logs nothing and never touches the disk, on uvloop with an asyncio Protocol (no streams,
no tasks per request): whatever a real server does per request comes on top. Its ops/s at 1, 8 and 32 sessions is
therefore an upper bound for any single-process CPython server on this machine, driven by the same client: where
it is below Java's figure, no Python code path can reach that target here. A measurement aid: it asserts nothing.
"""
from __future__ import annotations

import asyncio
import struct
import sys

FOUR_LETTER_WORD = int.from_bytes(b"srvr", "big")
CONNECT_REPLY = struct.pack(">iiqi", 0, 30000, 0x1000000000000001, 16) + bytes(16)
BODY = bytes(72)


class Floor(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf, self.connected = transport, bytearray(), False

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if not self.connected and n == FOUR_LETTER_WORD:
                self.transport.write(b"Zookeeper version: python floor\nMode: standalone\n")
                self.transport.close()
                return
            if len(buf) < 4 + n:
                return
            if not self.connected:
                self.connected = True
                self.transport.write(struct.pack(">i", len(CONNECT_REPLY)) + CONNECT_REPLY)
            else:                                    # length, xid (echoed), zxid, err 0, a small body
                self.transport.write(struct.pack(">i", 16 + len(BODY)) + bytes(buf[4:8]) + bytes(12) + BODY)
            del buf[:4 + n]


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1])))
