"""A learner's PING reply carries its sessions' touches, 12 bytes each (session id, timeout). A payload that ends
in the middle of one is bad input from a peer: Java's LearnerHandler reads it with a DataInputStream, touches the
whole entries, meets the end of the stream in the broken one and drops the learner with the IOException's lines.
A hand-written learner (sid 3, in every server's configuration) syncs with the leader of servers 1 and 2, then
sends such a PING; a Java 3.8 and a zkref leader must answer alike, and go on leading."""
import asyncio
import re
import struct

import pytest

from conftest import Ensemble, java_available, wait_for
from test_zab_newleader_config import register_and_read_to
from zkref.quorum.zab import ACK, NEWLEADER, PING, UPTODATE, epoch_of, make_zxid, packet, packet_bytes, read_packet_within

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

LINE = re.compile(r"^\S+ \S+ \[myid:\d*\] - (\w+)\s+\[.*?:([\w$]+)@\d+\] - (.*)$")


async def sync_then_ping(port: int, payload: bytes) -> bool:
    "Sync as sid 3 with the leader at `port`, send a PING carrying `payload`; whether the leader then closed the socket."
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        def ack_newleader(qp):
            if qp.type == NEWLEADER:
                writer.write(packet_bytes(packet(ACK, qp.zxid)))
        leader_info, _ = await register_and_read_to(reader, writer, UPTODATE, on_packet=ack_newleader)
        writer.write(packet_bytes(packet(ACK, make_zxid(epoch_of(leader_info.zxid), 0))))   # Learner: after UPTODATE
        writer.write(packet_bytes(packet(PING, 0, payload)))
        try:
            while True:                                       # the leader's own PINGs, until it hangs up
                await read_packet_within(reader, 15)
        except (EOFError, asyncio.IncompleteReadError, ConnectionError):
            return True
        except asyncio.TimeoutError:
            return False
    finally:
        writer.close()


def handler_tail(log: str) -> list[tuple[str, str, str]]:
    "The LearnerHandler's lines from its first ERROR on, each exception's first line as a line of its own."
    out, raw = [], log.splitlines()
    for i, line in enumerate(raw):
        m = LINE.match(line)
        if m and m[2] == "LearnerHandler" and (out or m[1] == "ERROR"):
            out.append(m.groups())
            if m[1] == "ERROR" and i + 1 < len(raw) and not LINE.match(raw[i + 1]):
                out.append(("", "", raw[i + 1].strip()))
    return [(lvl, cls, re.sub(r"/127\.0\.0\.1:\d+", "/127.0.0.1:P", msg)) for lvl, cls, msg in out]


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_ping_whose_touches_end_mid_entry_drops_the_learner_as_java(kind, tmp_path):
    """13 bytes of touches: one whole entry (a session the leader does not know: touched, nothing happens) and one
    byte of the next. Java: LearnerHandler.run (PING: while (dis.available() > 0) { readLong(); readInt(); touch })
    → EOFException → catch (IOException) 'Unexpected exception in LearnerHandler: ', closeSocket, GOODBYE; the
    leader leads on."""
    e = Ensemble(tmp_path, (kind, kind, "zkref"))
    e.start(1, 2)
    try:
        leader = e.wait_formed([1, 2])
        closed = asyncio.run(sync_then_ping(e.quorum(leader), struct.pack(">qi", 0x7777, 30000) + b"\x01"))
        wait_for(lambda: "GOODBYE" in e.log(leader), 20, what="the handler's end")
        tail = handler_tail(e.log(leader))
        assert e.mode(leader) == "leader"
    finally:
        e.stop_all()
    assert closed, kind
    assert tail == [("ERROR", "LearnerHandler", "Unexpected exception in LearnerHandler: "),
                    ("", "", "java.io.EOFException"),
                    ("INFO", "LearnerHandler", "Synchronously closing socket to learner 3."),
                    ("WARN", "LearnerHandler", "******* GOODBYE /127.0.0.1:P ********")], (kind, tail)
