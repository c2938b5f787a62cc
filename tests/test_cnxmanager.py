"""QuorumCnxManager: the election port's handshake, framing, connection rule and bad-input handling.

Every test talks over real sockets on 127.0.0.1 and free ports; the Java tests dial, or are dialled by, the
real Java ZooKeeper 3.8 server.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import free_port, wait_for, until, free_ports

from zkref.quorum.cnxmanager import (MAX_BUFFER, OBSERVER_ID, PACKETMAXSIZE, PROTOCOL_VERSION_V1,
                                     PROTOCOL_VERSION_V2, CircularBlockingQueue, InitialMessageException,
                                     QuorumCnxManager, UnableToBindQuorumPort, build_initial_message,
                                     parse_initial_message)


def addr() -> tuple[str, int]:
    return ("127.0.0.1", free_port())


async def managers(*sids: int, **kw) -> dict[int, QuorumCnxManager]:
    "Started managers for `sids`, all knowing each other."
    view = {sid: [("127.0.0.1", port)] for sid, port in zip(sids, free_ports(len(sids)))}
    out = {sid: QuorumCnxManager(sid, view[sid], view, **kw) for sid in sids}
    for m in out.values():
        await m.start()
    return out


async def halt(*ms: QuorumCnxManager) -> None:
    for m in ms:
        await m.halt()


async def dial(m: QuorumCnxManager, payload: bytes = b""):
    "A raw client connection to `m`'s election port, having written `payload`."
    reader, writer = await asyncio.open_connection(*m.election_addrs[0])
    writer.write(payload)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 10.0) -> bool:
    "True once the server has closed the connection (EOF), after reading anything it sent."
    async with asyncio.timeout(timeout):
        while await reader.read(65536):
            pass
    return True


def logged(caplog, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------------
# The initial message


def test_initial_message_layout():
    """The dialling peer first writes a long protocol version -65536, a long sid, then an int length and the UTF-8
    `host:port` of its election address (IPv6 in brackets); V2 joins several addresses with `|`.

    Reference: Java QuorumCnxManager.startConnection, NetUtils.formatInetAddr
    """
    b = build_initial_message(3, [("127.0.0.1", 3890), ("10.0.0.3", 3890)])
    assert b == struct.pack(">qqi", -65536, 3, 14) + b"127.0.0.1:3890"
    b2 = build_initial_message(3, [("::1", 3890), ("10.0.0.3", 3890)], PROTOCOL_VERSION_V2)
    assert b2 == struct.pack(">qqi", -65535, 3, 24) + b"[::1]:3890|10.0.0.3:3890"


def test_initial_message_parse_errors_and_wildcards():
    """The receiver rejects an unknown protocol version, a badly formed address and a bad port with Java's
    messages, and drops wildcard addresses (0.0.0.0, ::) from the list.

    Reference: Java QuorumCnxManager.InitialMessage.parse
    """
    cases = {(12, b"h:1"): "Got unrecognized protocol version 12",
             (PROTOCOL_VERSION_V1, b"nohost"): "Badly formed address: nohost",
             (PROTOCOL_VERSION_V1, b"h:1:2"): "Badly formed address: h:1:2",
             (PROTOCOL_VERSION_V1, b"h:x"): "Bad port number: x"}
    for (version, body), message in cases.items():
        with pytest.raises(InitialMessageException, match=re.escape(message)):
            parse_initial_message(version, 1, body)
    m = parse_initial_message(PROTOCOL_VERSION_V2, 4, b"0.0.0.0:3888|[::]:3888|[fe80::1]:3888|a.b:1")
    assert (m.sid, m.election_addr) == (4, [("fe80::1", 3888), ("a.b", 1)])


@settings(max_examples=500, deadline=None)
@given(st.integers(-(1 << 63), (1 << 63) - 1), st.binary(max_size=64))
def test_initial_message_parser_never_crashes(version, body):
    """Whatever follows the sid, parsing an initial message yields a message or InitialMessageException.

    Reference: Java QuorumCnxManager.InitialMessage.parse
    """
    try:
        parse_initial_message(version, 1, body)
    except InitialMessageException:
        pass


def test_send_queue_keeps_only_the_newest():
    """A peer's send queue holds one message; offering another drops the older one, so only a peer's newest
    notification is ever sent.

    Reference: Java QuorumCnxManager.SEND_CAPACITY, util.CircularBlockingQueue
    """
    async def scenario():
        q = CircularBlockingQueue(1)
        q.offer(b"old"); q.offer(b"new")
        return await q.poll(1), await q.poll(0.01), q.dropped
    assert asyncio.run(scenario()) == (b"new", None, 1)


# ---------------------------------------------------------------------------------------------------------
# Connections between managers


def test_only_the_connection_from_the_higher_sid_survives(caplog):
    """When the lower sid dials first, it drops its own connection after the handshake; the higher sid, on
    receiving a connection from a lower sid, closes it and dials back. The one connection that remains was
    initiated by the higher sid, and messages flow both ways over it.

    Reference: Java QuorumCnxManager.startConnection, handleConnection
    """
    caplog.set_level(logging.INFO)

    async def scenario():
        m = await managers(1, 2)
        m[1].to_send(2, b"from 1")
        got2 = await m[2].poll_recv_queue(10)
        m[2].to_send(1, b"from 2")
        got1 = await m[1].poll_recv_queue(10)
        w1, w2 = m[1].sender_worker_map[2].writer, m[2].sender_worker_map[1].writer
        # server 2 dialled server 1's election port; server 1 holds the accepted end of that same socket
        dialled_by_2 = w2.get_extra_info("peername")[1] == m[1].election_addrs[0][1]
        same_socket = w1.get_extra_info("peername") == w2.get_extra_info("sockname")
        await halt(*m.values())
        return got1, got2, dialled_by_2, same_socket

    got1, got2, dialled_by_2, same_socket = asyncio.run(scenario())
    assert (got2.sid, got2.buffer, got1.sid, got1.buffer) == (1, b"from 1", 2, b"from 2")
    assert dialled_by_2 and same_socket
    assert logged(caplog, "Have smaller server identifier, so dropping the connection: (myId:1 --> sid:2)")


def test_workers_are_tasks_named_like_java_threads():
    """Each connected peer has a SendWorker and a RecvWorker, named `SendWorker:<sid>` and `RecvWorker:<sid>`
    as Java's threads are.

    Reference: Java QuorumCnxManager.SendWorker, RecvWorker constructors
    """
    async def scenario():
        m = await managers(1, 2)
        m[2].to_send(1, b"x")
        await m[1].poll_recv_queue(10)
        names = {t.get_name() for t in asyncio.all_tasks()}
        await halt(*m.values())
        return names
    names = asyncio.run(scenario())
    assert {"SendWorker:1", "RecvWorker:1", "SendWorker:2", "RecvWorker:2"} <= names


def test_loopback_and_framing_on_the_wire():
    """A message to our own sid goes straight to the receive queue; a message to a peer is written as an int
    length followed by the bytes, and a framed message from a peer lands in the receive queue with its sid.

    Reference: Java QuorumCnxManager.toSend, SendWorker.send, RecvWorker.run
    """
    async def scenario():
        (m,) = (await managers(1)).values()
        m.to_send(1, b"to myself")
        loop = await m.poll_recv_queue(1)
        # a peer with a higher sid (5) dials in, handshakes, and exchanges one frame each way
        reader, writer = await dial(m, build_initial_message(5, [("127.0.0.1", 1)]))
        writer.write(struct.pack(">i", 5) + b"hello")
        await writer.drain()
        got = await m.poll_recv_queue(10)
        m.to_send(5, b"reply")
        frame = await asyncio.wait_for(reader.readexactly(4 + 5), 10)
        writer.close()
        await halt(m)
        return loop, got, frame
    loop, got, frame = asyncio.run(scenario())
    assert (loop.sid, loop.buffer) == (1, b"to myself")
    assert (got.sid, got.buffer) == (5, b"hello")
    assert frame == b"\x00\x00\x00\x05reply"


def test_last_message_is_resent_on_a_new_connection():
    """When a connection to a peer starts and nothing newer is queued, the last message sent to that peer is
    sent again, because it may have been lost with the old connection.

    Reference: Java QuorumCnxManager.SendWorker.run (lastMessageSent)
    """
    async def scenario():
        (m,) = (await managers(1)).values()
        hello = build_initial_message(7, [("127.0.0.1", 1)])
        r1, w1 = await dial(m, hello)
        await until(lambda: m.connected_to_peer(7), what="the connection from sid 7")
        m.to_send(7, b"vote")
        first = await asyncio.wait_for(r1.readexactly(8), 10)
        w1.close()
        await until(lambda: not m.connected_to_peer(7), what="the first connection to go")
        r2, w2 = await dial(m, hello)
        again = await asyncio.wait_for(r2.readexactly(8), 10)
        w2.close()
        await halt(m)
        return first, again
    first, again = asyncio.run(scenario())
    assert first == again == b"\x00\x00\x00\x04vote"


def test_connect_one_refuses_an_unknown_sid(caplog):
    """Asked to connect to a server id that is in no configuration, the manager logs `Invalid server id` and
    does not dial.

    Reference: Java QuorumCnxManager.connectOne(long)
    """
    async def scenario():
        (m,) = (await managers(1)).values()
        m.to_send(9, b"x")
        inprogress = set(m.inprogress_connections)
        await halt(m)
        return inprogress
    assert asyncio.run(scenario()) == set()
    assert logged(caplog, "Invalid server id: 9 ")


def test_halt_leaves_nothing_running():
    """halt() closes the listener and every connection and ends every task the manager started, so several
    managers can come and go in one event loop.

    Reference: Java QuorumCnxManager.halt, softHalt
    """
    async def scenario():
        m = await managers(1, 2, 3)
        for a in m.values():
            for b in m:
                a.to_send(b, b"hi")
        for a in m.values():
            await until(lambda: len(a.sender_worker_map) == 2, what="a full mesh")
        await halt(*m.values())
        left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        ports_free = []
        for a in m.values():
            with socket.socket() as s:   # the listener is gone: the port can be listened on again
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(a.election_addrs[0])
                s.listen()
                ports_free.append(True)
        return left, ports_free
    left, ports_free = asyncio.run(scenario())
    assert left == [] and ports_free == [True] * 3


# ---------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("payload, message", [
    (struct.pack(">q", -7) + b"garbage", "Got unrecognized protocol version -7"),
    (struct.pack(">qqi", PROTOCOL_VERSION_V1, 5, MAX_BUFFER + 1), f"Unreasonable buffer length: {MAX_BUFFER + 1}"),
    (struct.pack(">qqi", PROTOCOL_VERSION_V1, 5, 0), "Unreasonable buffer length: 0"),
    (struct.pack(">qqi", PROTOCOL_VERSION_V1, 5, 4) + b"nope", "Badly formed address: nope"),
    (struct.pack(">qqi", PROTOCOL_VERSION_V1, 5, 11) + b"h:123456789", "port out of range:123456789"),
    (struct.pack(">qqi", PROTOCOL_VERSION_V1, 5, 4) + b"a:b", "Read only 3 bytes out of 4 sent by server 5"),
])
def test_bad_initial_message_is_logged_and_dropped(caplog, payload, message):
    """A connection whose initial message is not valid is logged (`Initial message parsing error!` with the
    reason), closed, and forgotten; the manager keeps working.

    Reference: Java QuorumCnxManager.handleConnection, InitialMessage.parse
    """
    async def scenario():
        m = await managers(1, 2)
        reader, writer = await dial(m[1], payload)
        if message.startswith("Read only"):
            writer.write_eof()   # the peer says 4 bytes but sends 3 and stops
        closed = await closed_by_server(reader)
        writer.close()
        m[2].to_send(1, b"still fine")
        got = await m[1].poll_recv_queue(10)
        await halt(*m.values())
        return closed, got
    closed, got = asyncio.run(scenario())
    assert closed and (got.sid, got.buffer) == (2, b"still fine")
    assert logged(caplog, "Initial message parsing error!") and logged(caplog, message)


@pytest.mark.parametrize("length", [PACKETMAXSIZE + 1, 0, -5])
def test_bad_frame_length_drops_the_connection(caplog, length):
    """After the handshake, a frame length outside 1..512 KiB is refused: `Received packet with invalid packet`,
    the connection is dropped, other connections are unharmed.

    Reference: Java QuorumCnxManager.RecvWorker.run (PACKETMAXSIZE)
    """
    async def scenario():
        m = await managers(1, 2)
        reader, writer = await dial(m[1], build_initial_message(8, [("127.0.0.1", 1)]) + struct.pack(">i", length))
        closed = await closed_by_server(reader)
        writer.close()
        await until(lambda: not m[1].connected_to_peer(8), what="sid 8 to be forgotten")
        m[2].to_send(1, b"still fine")
        got = await m[1].poll_recv_queue(10)
        await halt(*m.values())
        return closed, got
    closed, got = asyncio.run(scenario())
    assert closed and got.buffer == b"still fine"
    assert logged(caplog, f"Received packet with invalid packet: {length}")
    assert logged(caplog, "Connection broken for id 8, my id = 1")


def test_silent_or_truncated_handshake_times_out(caplog):
    """A client that connects and sends part of the initial message, then nothing, is dropped after the socket
    timeout (tickTime * syncLimit in a server) instead of holding the listener.

    Reference: Java QuorumCnxManager.handleConnection (socket timeout), setSockOpts
    """
    async def scenario():
        m = await managers(1, socket_timeout_ms=300)
        reader, writer = await dial(m[1], b"\xff\xff")
        closed = await closed_by_server(reader)
        writer.close()
        await halt(*m.values())
        return closed
    assert asyncio.run(scenario())
    assert logged(caplog, "Exception reading or writing challenge")


def test_connection_from_own_sid_is_refused(caplog):
    """A connection claiming our own server id is logged as a configuration error or bug and closed.

    Reference: Java QuorumCnxManager.handleConnection (ZOOKEEPER-2164)
    """
    async def scenario():
        m = await managers(1)
        reader, writer = await dial(m[1], build_initial_message(1, [("127.0.0.1", 1)]))
        closed = await closed_by_server(reader)
        writer.close()
        await halt(*m.values())
        return closed
    assert asyncio.run(scenario())
    assert logged(caplog, "We got a connection request from a server with our own ID.")


def test_old_style_observer_gets_a_negative_sid(caplog):
    """An observer announcing sid Long.MAX_VALUE (OBSERVER_ID) is given a fresh negative identifier (which, being
    lower than ours, makes us close the connection and dial back the address it announced).

    Reference: Java QuorumCnxManager.handleConnection (observerCounter)
    """
    caplog.set_level(logging.INFO)

    async def scenario():
        m = await managers(1)
        reader, writer = await dial(m[1], build_initial_message(OBSERVER_ID, [("127.0.0.1", 1)]))
        await until(lambda: logged(caplog, "Setting arbitrary identifier to observer: -1"), what="the log line")
        await until(lambda: logged(caplog, "Cannot open channel to -1 at election address /127.0.0.1:1"),
                    what="the dial back")
        writer.close()
        await halt(*m.values())
    asyncio.run(scenario())
    assert logged(caplog, "Setting arbitrary identifier to observer: -1")


def test_bind_failure_retries_then_asks_for_exit_code_14(caplog):
    """If the election address cannot be bound, the listener retries `zookeeper.electionPortBindRetry` times,
    logs Java's two error lines and gives up; the server must then exit with code 14.

    Reference: Java QuorumCnxManager.Listener.ListenerHandler.acceptConnections, ExitCode.UNABLE_TO_BIND_QUORUM_PORT
    """
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]

    async def scenario():
        m = QuorumCnxManager(1, [("127.0.0.1", port)], {1: [("127.0.0.1", port)]}, port_bind_max_retry=2,
                             bind_retry_delay_ms=10)
        with pytest.raises(UnableToBindQuorumPort) as info:
            await m.start()
        await m.halt()
        return info.value
    try:
        error = asyncio.run(scenario())
    finally:
        blocker.close()
    assert error.exit_code == 14
    assert logged(caplog, f"Leaving listener thread for address 127.0.0.1:{port} after 2 errors. "
                          "Use zookeeper.electionPortBindRetry property to increase retry count.")
    assert logged(caplog, "As I'm leaving the listener thread, I won't be able to participate in leader "
                          f"election any longer: 127.0.0.1:{port}")
    # the failure is expected and already explained: no "Unexpected exception" line, which Java does not print
    assert not any("Unexpected exception" in r.getMessage() for r in caplog.records)


def test_listen_on_all_ips_binds_the_wildcard_address():
    """With quorumListenOnAllIPs=true the election port is bound on 0.0.0.0, not just the configured host.

    Reference: ZooKeeper Administrator's Guide, "quorumListenOnAllIPs"; Java QuorumCnxManager.Listener.run
    """
    async def scenario():
        a = addr()
        m = QuorumCnxManager(1, [a], {1: [a]}, listen_on_all_ips=True)
        await m.start()
        bound = [s.getsockname()[0] for srv in m.listener.servers for s in srv.sockets]
        await m.halt()
        return bound
    assert asyncio.run(scenario()) == ["0.0.0.0"]


# ---------------------------------------------------------------------------------------------------------
# Against Java ZooKeeper 3.8


def java_peer_config(ports: dict[int, tuple[int, int]]) -> dict:
    used = {p for pair in ports.values() for p in pair}
    cfg = {"initLimit": 5, "syncLimit": 2, "tickTime": 500,
           "clientPort": next(p for p in free_ports(8) if p not in used)}
    for sid, (q, e) in ports.items():
        cfg[f"server.{sid}"] = f"127.0.0.1:{q}:{e}"
    return cfg


@pytest.mark.java
@pytest.mark.slow
def test_java_initial_message_bytes(java_zk):
    """Java 3.8, dialling a peer with a higher sid, sends exactly: long -65536, long its sid, int length, and
    `127.0.0.1:<its election port>` — then drops the connection, since the higher sid must dial.

    Reference: Java QuorumCnxManager.startConnection
    """
    p = free_ports(4)
    ports = {1: (p[0], p[1]), 2: (p[2], p[3])}
    listener = socket.socket()
    listener.bind(("127.0.0.1", ports[2][1]))
    listener.listen()
    listener.settimeout(60)
    java_zk(java_peer_config(ports), name="java1", myid=1, wait=False)
    try:
        conn, _ = listener.accept()
        conn.settimeout(30)
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
        conn.close()
    finally:
        listener.close()
    text = f"127.0.0.1:{ports[1][1]}".encode()
    assert data == struct.pack(">qqi", -65536, 1, len(text)) + text


@pytest.mark.java
@pytest.mark.slow
def test_java_peer_and_zkref_manager_connect_and_exchange(java_zk):
    """A zkref manager (sid 2) and a Java 3.8 peer (sid 1) end with one connection, dialled by zkref, over
    which Java's notifications arrive framed as Java sends them.

    Reference: Java QuorumCnxManager.handleConnection, SendWorker.send; FastLeaderElection.buildMsg
    """
    p = free_ports(4)
    ports = {1: (p[0], p[1]), 2: (p[2], p[3])}
    view = {sid: [("127.0.0.1", e)] for sid, (q, e) in ports.items()}

    async def scenario():
        m = QuorumCnxManager(2, view[2], view)
        await m.start()
        java_zk(java_peer_config(ports), name="java1", myid=1, wait=False)
        msg = await m.poll_recv_queue(60)
        dialled_by_zkref = m.sender_worker_map[1].writer.get_extra_info("peername")[1] == ports[1][1]
        await m.halt()
        return msg, dialled_by_zkref
    msg, dialled_by_zkref = asyncio.run(scenario())
    assert msg is not None and msg.sid == 1 and dialled_by_zkref
    state, leader, zxid, epoch, peer_epoch, version, n = struct.unpack_from(">iqqqqii", msg.buffer)
    assert (state, leader, version) == (0, 1, 2) and len(msg.buffer) == 44 + n
    assert f"server.2=127.0.0.1:{ports[2][0]}:{ports[2][1]}:participant" in msg.buffer[44:].decode()
