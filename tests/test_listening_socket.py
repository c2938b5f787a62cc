"""Every port zkref listens on is opened as Java opens it: bound and listening in one step, or an error.

Java's `ServerSocket.bind(address, backlog)` binds and listens and throws `BindException` if either fails. Under
uvloop, asyncio's `create_server(host, port)` does not raise a failed `listen()`: it returns a server that says it
serves, on no socket. A `listen()` fails after a good `bind()` when two processes bind one port with
`SO_REUSEADDR` before either listens — two followers sharing one `observerMasterPort` on one host both "started"
their ObserverMaster that way (test_observer_master.py::test_shared_port_on_one_host, CI of session 22).
Reference: Java ServerSocket.bind, ObserverMaster.start, NIOServerCnxnFactory.configure, Leader(QuorumPeer)
"""
from __future__ import annotations

import ast
import asyncio
import errno
import socket
from pathlib import Path

import pytest
import uvloop

from zkref.server.cnxn import bind_and_listen

ROOT = Path(__file__).resolve().parent.parent


def bound(host: str, port: int, backlog: int = 100) -> socket.socket:
    "bind_and_listen, on a loop of its own."
    return asyncio.run(bind_and_listen(host, port, backlog))


def test_the_socket_is_bound_and_listening():
    "Java: ServerSocket.bind(addr, backlog) returns a listening socket; SO_REUSEADDR is on (the JDK's default on Linux)."
    with bound("127.0.0.1", 0) as s:
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert not s.getblocking()
        with socket.create_connection(s.getsockname(), timeout=5):
            pass


def test_a_name_is_one_address_ipv4_first_and_empty_is_the_wildcard():
    "Java: new InetSocketAddress(host, port) resolves a name to one address, IPv4 first (preferIPv6Addresses=false)."
    with bound("localhost", 0) as s:
        assert s.family == socket.AF_INET and s.getsockname()[0] == "127.0.0.1"
    with bound("", 0) as s:
        assert s.getsockname()[0] == "0.0.0.0"


def test_a_port_in_use_raises_address_in_use():
    "Java: BindException: Address already in use."
    with bound("127.0.0.1", 0) as held:
        with pytest.raises(OSError) as info:
            bound("127.0.0.1", held.getsockname()[1])
        assert info.value.errno == errno.EADDRINUSE


def test_the_race_that_uvloop_hides_raises_here():
    """Two sockets bound to one port before either listens: the second `listen()` fails. Given such a socket,
    uvloop's start_server reports a serving server without a socket (why zkref binds and listens itself), while
    bind_and_listen, which binds and listens at once, raises on that port."""
    def half_bound(port: int) -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return s

    first = half_bound(0)
    port = first.getsockname()[1]
    second = half_bound(port)
    try:
        first.listen(5)

        async def given_to_uvloop():
            server = await asyncio.start_server(lambda r, w: None, sock=second)
            try:
                return server.is_serving(), [s for s in server.sockets if s is not None]
            finally:
                server.close()
        assert uvloop.run(given_to_uvloop()) == (True, [])     # the pitfall: "serving", on nothing
        with pytest.raises(OSError) as info:
            bound("127.0.0.1", port)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        first.close(); second.close()


def _listening_calls_without_a_socket(path: Path) -> list[str]:
    "`start_server(...)`/`create_server(...)` calls on the event loop that pass a host and port instead of `sock=`."
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("start_server", "create_server")):
            continue
        owner = node.func.value                # not socket.create_server (binds and listens) nor MiniCluster's own
        if isinstance(owner, ast.Name) and owner.id in ("socket", "self"):
            continue
        if not any(k.arg == "sock" for k in node.keywords):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_listening_port_in_zkref_uses_bind_and_listen():
    """No zkref module asks the event loop to bind a host and port itself: each hands it a socket from
    bind_and_listen, so a failed listen() is an error, as Java's ServerSocket.bind makes it."""
    offenders = [hit for p in sorted((ROOT / "zkref").rglob("*.py")) for hit in _listening_calls_without_a_socket(p)]
    assert offenders == []
