"""Group commit in the standalone SyncRequestProcessor, with zkref's lone-write path (chapter 11e, "A lone
write"): a write that comes alone is logged, committed and handed on in the callback that read it, and that
must change nothing a client or an operator can see: one fsync per write sent alone, the same Sync metrics as
Java's loop records, and writes sent together still share one fsync. Raw sockets, so what arrives together is the
test's choice."""
from __future__ import annotations

import pytest

from test_standalone_metrics import mntr, number
from test_standalone_server import RawClient
from zkref.jute import CreateRequest, SetDataRequest
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request

CFG = {"4lw.commands.whitelist": "*"}
# the Sync metrics that each flushed write moves once (Java: SyncRequestProcessor.run and flush, 3.8)
PER_WRITE = ("sync_processor_request_queued", "cnt_sync_processor_queue_time_ms", "cnt_sync_process_time",
             "cnt_sync_processor_queue_size", "cnt_sync_processor_queue_and_flush_time_ms")
PER_FLUSH = ("cnt_sync_processor_batch_size", "sum_sync_processor_batch_size", "cnt_sync_processor_queue_flush_time_ms",
             "cnt_fsynctime")


def deltas(before: dict, after: dict, keys) -> dict[str, float]:
    return {k: number(after, k) - number(before, k) for k in keys}


def writes_one_at_a_time(port: int, k: int) -> dict[str, float]:
    "`mntr`'s moves over `k` setData, each sent after the previous one's reply."
    c = RawClient(port)
    try:
        c.call(OpCode.create, CreateRequest(path="/g", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
        before = mntr(port)
        for i in range(k):
            h, _ = c.call(OpCode.setData, SetDataRequest(path="/g", data=b"%d" % i, version=-1))
            assert h.err == 0
        after = mntr(port)
    finally:
        c.sock.close()
    return deltas(before, after, PER_WRITE + PER_FLUSH)


@pytest.mark.parametrize("kind", ["zkref", "java"])
def test_each_write_sent_alone_is_its_own_flush_with_javas_metrics(kind, request):
    """A write that a lone client sends after the previous reply finds Sync's queue empty: Java's
    SyncRequestProcessor.run takes it, polls the empty queue (pollTime 0 at the default flushDelay) and flushes,
    so every such write is one batch and one fsync (FileTxnLog.commit's FSYNC_TIME), and moves each per-request
    Sync metric once (SYNC_PROCESSOR_QUEUED, _QUEUE_TIME, SYNC_PROCESS_TIME, the queue-size sample before the
    poll, _QUEUE_AND_FLUSH_TIME). zkref's lone-write path must record exactly what its loop would.
    Reference: Java SyncRequestProcessor.run/flush, ZooKeeperServer's static block (flushDelay 0), 3.8."""
    server = request.getfixturevalue(f"{kind}_zk")(CFG)   # java_zk skips where Java 3.8 is not installed
    k = 12
    moved = writes_one_at_a_time(server.client_port, k)
    assert moved == {**dict.fromkeys(PER_WRITE, k), **dict.fromkeys(PER_FLUSH, k)}, (kind, moved)


def test_writes_sent_together_share_one_fsync(zkref_zk):
    """Group commit: the writes that are queued when Sync's loop finds nothing more to take are flushed with one
    fsync (Java: SyncRequestProcessor.run flushes toFlush only when the poll of the queue comes back empty). Ten
    setData sent in one send arrive in one read; zkref passes them to Sync one by one from that read, and the
    first has bytes behind it, so it is no lone write: all ten make one batch, one fsync. (Java's figure depends
    on when its SyncThread wakes, so only zkref's is pinned.)"""
    server = zkref_zk(CFG)
    c = RawClient(server.client_port)
    try:
        c.call(OpCode.create, CreateRequest(path="/g", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
        before = mntr(server.client_port)
        c.sock.sendall(b"".join(encode_request(100 + i, OpCode.setData, SetDataRequest(path="/g", data=b"%d" % i,
                                                                                        version=-1))
                                for i in range(10)))
        replies = [c.reply()[0] for _ in range(10)]
        after = mntr(server.client_port)
    finally:
        c.sock.close()
    assert [(h.xid, h.err) for h in replies] == [(100 + i, 0) for i in range(10)]
    moved = deltas(before, after, PER_WRITE + PER_FLUSH)
    assert moved["cnt_sync_processor_batch_size"] == moved["cnt_fsynctime"] == 1, moved
    assert moved["sum_sync_processor_batch_size"] == moved["sync_processor_request_queued"] == 10, moved
    assert number(after, "max_sync_processor_batch_size") >= 10, after
