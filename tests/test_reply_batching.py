"""A connection's replies leave together: one write per connection and turn, as Java's selector writes them.

Java's `NIOServerCnxn.sendBuffer` only queues a reply on the connection (`outgoingBuffers`); the selector thread
writes everything queued with one gathering write when the socket is writable (`NIOServerCnxn.handleWrite`). zkref
holds a connection's replies while the requests of one read are processed (when the read brought more than one),
and while SyncThread hands on a committed batch that several connections share, one of them with more than one
request in it; then it writes each connection's queue once (chapter 06_connections1, "Sending"; chapter 11e).
These tests run the standalone server in this process, so that the writes to each connection's transport can be
counted, and talk to it over real sockets: every reply arrives, in order, with each watch event before the reply
of the write that fired it, and what was queued before a close is written before the close.
"""
from __future__ import annotations

import pytest

from conftest import four_letter_word
from test_admin_http import InProcessZkref
from test_standalone_server import RawClient
from zkref.jute import CreateRequest, ExistsRequest, GetDataRequest, SetDataRequest
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request
from zkref.server.server_cnxn import HELD_REPLIES

pytestmark = pytest.mark.timeout(120)


class Counted:
    "A transport wrapper that counts writes (and the frames they carry) and calls of data_received that bring bytes."

    def __init__(self, server: InProcessZkref, session_id: int):
        self.server = server
        self.writes = self.frames = self.reads = 0

        async def install():
            cnxn = next(c for c in server.main.cnxn_factory.cnxns if c.session_id == session_id)
            transport, received = cnxn.writer, cnxn.data_received

            class Wire:
                def __getattr__(_, name):
                    return getattr(transport, name)

                def write(_, data):
                    data = bytes(data)
                    self.writes += 1
                    rest = data
                    while rest:
                        rest = rest[4 + int.from_bytes(rest[:4], "big"):]
                        self.frames += 1
                    transport.write(data)

            def data_received(data):
                if data:
                    self.reads += 1
                received(data)

            cnxn.writer, cnxn.data_received = Wire(), data_received
        server.call(install())

    def counts(self) -> tuple[int, int, int]:
        async def read():
            return self.writes, self.frames, self.reads
        return self.server.call(read())

    def holding(self) -> bool:
        "Does the server's thread still hold replies (it must not, once a turn is over)?"
        async def read():
            return HELD_REPLIES.cnxns is not None
        return self.server.call(read())


@pytest.fixture
def server(tmp_path):
    s = InProcessZkref(tmp_path, {"4lw.commands.whitelist": "*"}, admin=False).start()
    try:
        yield s
    finally:
        s.stop()


def mntr(port: int, key: str) -> float:
    for line in four_letter_word(port, "mntr").splitlines():
        name, _, value = line.partition("\t")
        if name == key:
            return float(value)
    raise KeyError(key)


def test_pipelined_reads_get_their_replies_in_one_write(server):
    """Ten reads sent in one packet (getData and exists, one of a node that does not exist) are answered in order,
    with one write to the socket for each read of the connection that brought requests, not one per reply.
    Reference: Java NIOServerCnxn.sendBuffer (queues on outgoingBuffers), NIOServerCnxn.handleWrite (one
    gathering write of all that is queued)."""
    c = RawClient(server.client_port)
    c.call(OpCode.create, CreateRequest(path="/n", data=b"x" * 10, acl=OPEN_ACL_UNSAFE, flags=0))
    counted = Counted(server, c.session_id)
    plan = []
    for i in range(10):
        op, rec = ((OpCode.getData, GetDataRequest(path="/n", watch=False)) if i % 2 == 0 else
                   (OpCode.exists, ExistsRequest(path="/missing" if i == 5 else "/n", watch=False)))
        plan.append((i + 100, op, rec))
    c.sock.sendall(b"".join(encode_request(xid, op, rec) for xid, op, rec in plan))
    replies = [c.reply()[0] for _ in plan]
    assert [h.xid for h in replies] == [xid for xid, _, _ in plan]
    assert [h.err for h in replies] == [0] * 5 + [-101] + [0] * 4        # NONODE for /missing
    writes, frames, reads = counted.counts()
    print(f"reads with requests: {reads}, writes: {writes}, frames written: {frames}")
    assert frames == 10
    assert 1 <= writes == reads < 10
    assert not counted.holding()
    c.close()


def test_a_client_that_waits_for_each_reply_gets_it_written_at_once(server):
    """Requests sent one at a time, each waiting for its reply, reads and writes: each reply is written by itself
    as soon as it is made; nothing is held, since no connection can get a second frame in that turn.
    Reference: Java NIOServerCnxn.sendBuffer (the selector writes a lone reply at once)."""
    c = RawClient(server.client_port)
    counted = Counted(server, c.session_id)
    c.call(OpCode.create, CreateRequest(path="/s", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    for i in range(4):
        c.call(OpCode.setData, SetDataRequest(path="/s", data=bytes([i]), version=-1))
        c.call(OpCode.getData, GetDataRequest(path="/s", watch=False))
    assert counted.counts()[:2] == (9, 9)
    assert not counted.holding()
    c.close()


def test_a_shared_batch_answers_each_connection_with_one_write_event_first(server):
    """Client A, with a data watch on /w, sends ten setData of /w in one packet and client B one setData of /b:
    with zookeeper.flushDelay and maxWriteQueuePollTime at 1 s they are one group commit (chapter 11e). A gets
    the watch event and its ten replies in one write, the event before the reply of the setData that fired it,
    as Java's FinalRequestProcessor sends them (DataTree.setData triggers the watch before the reply is queued);
    B gets its reply. Reference: Java SyncRequestProcessor.flush, NIOServerCnxn.sendBuffer/handleWrite."""
    a, b = RawClient(server.client_port), RawClient(server.client_port)
    a.call(OpCode.create, CreateRequest(path="/w", data=b"0", acl=OPEN_ACL_UNSAFE, flags=0))
    b.call(OpCode.create, CreateRequest(path="/b", data=b"0", acl=OPEN_ACL_UNSAFE, flags=0))
    a.call(OpCode.getData, GetDataRequest(path="/w", watch=True))
    counted = Counted(server, a.session_id)
    batches_before = mntr(server.client_port, "zk_cnt_sync_processor_batch_size")

    async def slow_flushes():
        server.main.zks.flush_delay_ms = server.main.zks.max_write_queue_poll_time_ms = 1000
    server.call(slow_flushes())
    a.sock.sendall(b"".join(encode_request(200 + i, OpCode.setData,
                                           SetDataRequest(path="/w", data=str(i).encode(), version=-1))
                            for i in range(10)))
    b.send(OpCode.setData, SetDataRequest(path="/b", data=b"1", version=-1))
    order = []
    while len([o for o in order if o != "event"]) < 10:
        frame_ = a.read_frame()
        xid = int.from_bytes(frame_[:4], "big", signed=True)
        order.append("event" if xid == -1 else xid)
    assert order == ["event"] + list(range(200, 210))
    assert b.reply()[0].err == 0
    batches = mntr(server.client_port, "zk_cnt_sync_processor_batch_size") - batches_before
    writes, frames, reads = counted.counts()
    print(f"batches: {batches:.0f}, A's reads with requests: {reads}, writes: {writes}, frames written: {frames}")
    assert batches == 1
    assert (writes, frames) == (1, 11)
    assert not counted.holding()
    a.close()
    b.close()


def test_a_lone_pipelining_client_gets_its_write_replies_as_they_are_made(server):
    """One client sends ten setData in one packet: one group commit, all its own. Its replies are written one by
    one as FinalRequestProcessor makes them, so that it can read the first and send more while the rest are
    made (chapter 11e: a batch is held only when connections share it). Reference: Java
    SyncRequestProcessor.flush hands each request on in turn; NIOServerCnxn.sendBuffer."""
    c = RawClient(server.client_port)
    c.call(OpCode.create, CreateRequest(path="/l", data=b"0", acl=OPEN_ACL_UNSAFE, flags=0))
    counted = Counted(server, c.session_id)
    c.sock.sendall(b"".join(encode_request(300 + i, OpCode.setData,
                                           SetDataRequest(path="/l", data=b"x", version=-1)) for i in range(10)))
    assert [c.reply()[0].xid for _ in range(10)] == list(range(300, 310))
    assert counted.counts()[:2] == (10, 10)
    c.close()


def test_replies_queued_before_a_close_are_written_before_it(server):
    """Two reads and a closeSession in one packet: both replies, then the closeSession's, then the end of the
    stream. A connection writes what it queued before it closes, as Java's closeConn marker comes after the
    queued replies. Reference: Java NIOServerCnxn.sendCloseSession, handleWrite (closeConn)."""
    c = RawClient(server.client_port)
    c.call(OpCode.create, CreateRequest(path="/c", data=b"c", acl=OPEN_ACL_UNSAFE, flags=0))
    c.sock.sendall(encode_request(1, OpCode.getData, GetDataRequest(path="/c", watch=False)) +
                   encode_request(2, OpCode.exists, ExistsRequest(path="/c", watch=False)) +
                   encode_request(3, OpCode.closeSession, None))
    assert [c.reply()[0].xid for _ in range(3)] == [1, 2, 3]
    c.sock.settimeout(10)
    assert c.sock.recv(1) == b""
    c.sock.close()
    still = RawClient(server.client_port)
    assert still.call(OpCode.exists, ExistsRequest(path="/c", watch=False))[0].err == 0
    still.close()
