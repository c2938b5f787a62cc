"""Shared by the Zab interop tests (test_zab_java, test_zab_java_leader): a zkref server on its own loop thread."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from kazoo.client import KazooClient


class LoopThreadNode:
    """A zkref server `myid` (data dir, quorum verifier) whose coroutines run on its own event loop thread;
    the test thread runs them with `call`. Subclasses add the role (follower, elected leader)."""
    call_timeout = 60

    def __init__(self, data_dir: Path, qv, myid: int = 3):
        self.data_dir, self.qv, self.myid = data_dir, qv, myid
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout=None):
        "Run `coro` on the node's loop and wait for its result (at most `timeout`, else `call_timeout`, seconds)."
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout or self.call_timeout)

    def stop_loop(self):
        "Stop the node's loop and join its thread."
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@contextlib.contextmanager
def kazoo(java, timeout_s: float = 10):
    "A started kazoo client of the Java server `java` (a conftest JavaZk), stopped and closed on exit."
    zk = KazooClient(hosts=f"127.0.0.1:{java.client_port}", timeout=timeout_s)
    zk.start(timeout=30)
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


async def const(v):
    "A coroutine returning `v` (to read a value on the node's loop)."
    return v
