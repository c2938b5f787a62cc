"""When SyncRequestProcessor flushes: `zookeeper.flushDelay`, `zookeeper.maxWriteQueuePollTime` and
`zookeeper.maxBatchSize`, on a standalone Java 3.8 server and on zkref, and on every server of a three-server
Java 3.8 and zkref ensemble (Java's leader and learners log through the same class), driven the same way (kazoo)
and read back through `mntr` and the clock (lower bounds only: a loaded machine may always be slower)."""
from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

CFG = {"4lw.commands.whitelist": "*"}


def mntr(port: int) -> dict[str, float]:
    "The numeric lines of `mntr`, without zk_."
    out = {}
    for line in four_letter_word(port, "mntr").splitlines():
        key, _, value = line.partition("\t")
        try:
            out[key.removeprefix("zk_")] = float(value)
        except ValueError:
            pass
    return out


def kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=10)
    k.start(timeout=15)
    return k


def pipelined_creates(server, n: int) -> tuple[dict, dict]:
    "`mntr` before and after `n` creates sent without waiting for each other's replies (one session)."
    k = kazoo(server.hosts)
    try:
        k.create("/p", b"")                            # the session's txn and this one are flushed before
        before = mntr(server.client_port)
        for result in [k.create_async(f"/p/{i}", b"x") for i in range(n)]:
            result.get(timeout=20)
        after = mntr(server.client_port)
    finally:
        k.stop()
        k.close()
    return before, after


@pytest.mark.parametrize("max_batch_size", [1, 3])
def test_max_batch_size_caps_every_flush(java_zk, zkref_zk, max_batch_size):
    """With -Dzookeeper.maxBatchSize=B, SyncRequestProcessor.shouldFlush is true as soon as toFlush holds B
    requests, so no flush covers more than B: with B=1 every write is its own flush and its own fsync
    (FileTxnLog.commit records one fsynctime per fsync), so n pipelined creates add exactly n samples to
    sync_processor_batch_size and fsynctime; with B=3 they add at least n/3, and none is larger than 3.
    Reference: Java ZooKeeperServer's second static block (Integer.getInteger(MAX_BATCH_SIZE, 1000)),
    SyncRequestProcessor.shouldFlush/flush (BATCH_SIZE), FileTxnLog.commit (FSYNC_TIME), 3.8."""
    n = 30
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=[f"-Dzookeeper.maxBatchSize={max_batch_size}"])
        before, after = pipelined_creates(server, n)
        flushes = after["cnt_sync_processor_batch_size"] - before["cnt_sync_processor_batch_size"]
        fsyncs = after["cnt_fsynctime"] - before["cnt_fsynctime"]
        assert fsyncs == flushes, (server.kind, fsyncs, flushes)
        assert after["max_sync_processor_batch_size"] <= max_batch_size, (server.kind, after)
        flushed = after["sum_sync_processor_batch_size"] - before["sum_sync_processor_batch_size"]
        assert flushed >= n, (server.kind, flushed)    # a ping that comes behind a write joins its batch
        if max_batch_size == 1:
            assert flushes == flushed == n, (server.kind, flushes, flushed)
        else:
            assert flushes >= n / max_batch_size, (server.kind, flushes)


@pytest.mark.parametrize("flags, spacing_ms", [
    (["-Dzookeeper.flushDelay=200", "-Dzookeeper.maxWriteQueuePollTime=200"], 200),
    (["-Dzookeeper.flushDelay=300"], 100),             # the poll time defaults to flushDelay / 3
])
def test_flush_delay_spaces_out_flushes(java_zk, zkref_zk, flags, spacing_ms):
    """With -Dzookeeper.flushDelay=D a write that SyncThread takes within D ms of the last flush is not flushed
    until D ms after it (shouldFlush, getRemainingDelay), or until no request came for the poll time,
    -Dzookeeper.maxWriteQueuePollTime=P (default D/3): the loop polls for min(P, what is left of D) and flushes
    when the poll times out. A write sent after the previous write's reply is taken after that flush, so k
    writes in a row take at least (k-1)·min(P, D) ms from the first one's send (the first may be flushed at
    once: after a quiet spell longer than D nothing holds it). Only lower bounds are asserted.
    Reference: Java ZooKeeperServer's second static block (Long.getLong(FLUSH_DELAY, 0),
    Long.getLong(MAX_WRITE_QUEUE_POLL_SIZE, flushDelay / 3)), SyncRequestProcessor.run/shouldFlush/
    getRemainingDelay, 3.8."""
    k_writes = 4
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=flags)
        k = kazoo(server.hosts)
        try:
            begin = time.monotonic()
            for i in range(k_writes):
                k.create(f"/w{i}", b"")
            elapsed_ms = (time.monotonic() - begin) * 1000
        finally:
            k.stop()
            k.close()
        assert elapsed_ms >= (k_writes - 1) * spacing_ms * 0.95, (server.kind, elapsed_ms)   # timer granularity


# ---- quorum roles: the leader's Sync (ProposalRequestProcessor -> Sync -> AckRequestProcessor) and each
# follower's (Sync -> SendAckRequestProcessor) are Java's same SyncRequestProcessor, reading the same knobs


def quiet(e: Ensemble, leader: int, before: dict | None = None, n: int = 0) -> dict | None:
    """Each server's `mntr`, once every follower has received each PROPOSAL the leader sent
    (learner_proposal_received_count = proposal_count) and every server has flushed each txn it was handed
    (sync_processor_request_queued = sum_sync_processor_batch_size: only txns reach a quorum server's Sync),
    at least n more than in `before`, and no flush is half counted (BATCH_SIZE is added as a flush starts,
    FSYNC_TIME once its fsync returns, in Java as in zkref: the counts must read the same twice, 0.3 s apart);
    else None."""
    ms = {i: mntr(e.client(i)) for i in e.ids}
    proposed = ms[leader]["proposal_count"]
    if any(ms[i]["learner_proposal_received_count"] != proposed for i in e.ids if i != leader):
        return None
    if any(m["sync_processor_request_queued"] != m["sum_sync_processor_batch_size"] for m in ms.values()):
        return None
    if before and any(ms[i]["sum_sync_processor_batch_size"] - before[i]["sum_sync_processor_batch_size"] < n for i in e.ids):
        return None
    time.sleep(0.3)
    keys = ("sync_processor_request_queued", "cnt_sync_processor_batch_size", "cnt_fsynctime")
    again = {i: mntr(e.client(i)) for i in e.ids}
    if any(again[i].get(key) != ms[i].get(key) for i in e.ids for key in keys):
        return None
    return ms


def formed(kind: str, root, flags: list[str]) -> tuple[Ensemble, int]:
    "A started three-server `kind` ensemble with these JVM flags (system properties) on every server, and its leader."
    e = Ensemble(root, (kind,) * 3, jvm_flags=flags)
    e.start()
    try:
        return e, e.wait_formed()
    except BaseException:
        e.stop_all()
        raise


@pytest.mark.timeout(300)
def test_max_batch_size_one_is_one_fsync_per_txn_on_every_quorum_server(tmp_path):
    """With -Dzookeeper.maxBatchSize=1 on every server, every SyncRequestProcessor of the ensemble — the
    leader's, fed by ProposalRequestProcessor, and each follower's, fed by FollowerZooKeeperServer.logRequest —
    flushes as soon as toFlush holds one txn, so n creates pipelined through the leader are n flushes and n
    fsyncs on the leader and on each follower, however the PROPOSALs arrive (a follower that reads several in
    one go still logs them one fsync each).
    Reference: Java SyncRequestProcessor.run/shouldFlush/flush (BATCH_SIZE), FileTxnLog.commit (FSYNC_TIME),
    ZooKeeperServer's second static block (zookeeper.maxBatchSize), LeaderZooKeeperServer/FollowerZooKeeperServer
    .setupRequestProcessors, 3.8."""
    n = 30
    for kind in ("java", "zkref"):
        e, leader = formed(kind, tmp_path / kind, ["-Dzookeeper.maxBatchSize=1"])
        try:
            k = kazoo(f"127.0.0.1:{e.client(leader)}")
            try:
                k.create("/p", b"")                    # the session's txn and this one, logged before
                before = wait_for(lambda: quiet(e, leader), 30, 0.2, what=f"{kind}: every server logged /p")
                for result in [k.create_async(f"/p/{i}", b"x") for i in range(n)]:
                    result.get(timeout=30)
                after = wait_for(lambda: quiet(e, leader, before, n), 30, 0.2, what=f"{kind}: every server flushed the creates")
            finally:
                k.stop()
                k.close()
            for i in e.ids:
                d = {key: after[i][key] - before[i].get(key, 0) for key in
                     ("sync_processor_request_queued", "cnt_sync_processor_batch_size", "sum_sync_processor_batch_size",
                      "cnt_fsynctime")}
                role = "leader" if i == leader else "follower"
                assert d == {"sync_processor_request_queued": n, "cnt_sync_processor_batch_size": n,
                             "sum_sync_processor_batch_size": n, "cnt_fsynctime": n}, (kind, role, d)
                assert after[i]["max_sync_processor_batch_size"] == 1, (kind, role, after[i])
        finally:
            e.stop_all()


@pytest.mark.timeout(300)
def test_flush_delay_spaces_out_quorum_writes(tmp_path):
    """With -Dzookeeper.flushDelay=D and -Dzookeeper.maxWriteQueuePollTime=D on every server, each server's
    SyncRequestProcessor flushes a txn no sooner than D ms after its previous flush (shouldFlush,
    getRemainingDelay, the poll for min(P, what is left of D)); a write is committed only once a quorum has
    flushed it. Any two quorums of three servers share one, which flushed write j before commit j and write j+1
    (proposed after commit j) in a later flush, at least D after: so commit j+1 comes at least D after commit
    j-1, and k writes in a row through the leader take at least ⌊k/2⌋·D ms from the first one's send. Not (k-1)·D:
    a server left out of one quorum may flush that write together with the next (Java's 3 servers once took
    568 ms for 4 writes at D = 200).
    Reference: Java SyncRequestProcessor.run/shouldFlush/getRemainingDelay/flush (lastFlushTime), ZooKeeperServer's
    second static block (zookeeper.flushDelay, zookeeper.maxWriteQueuePollTime), Leader.processAck, 3.8."""
    k_writes, delay_ms = 6, 200
    flags = [f"-Dzookeeper.flushDelay={delay_ms}", f"-Dzookeeper.maxWriteQueuePollTime={delay_ms}"]
    for kind in ("java", "zkref"):
        e, leader = formed(kind, tmp_path / kind, flags)
        try:
            k = kazoo(f"127.0.0.1:{e.client(leader)}")
            try:
                begin = time.monotonic()
                for i in range(k_writes):
                    k.create(f"/w{i}", b"")
                elapsed_ms = (time.monotonic() - begin) * 1000
            finally:
                k.stop()
                k.close()
        finally:
            e.stop_all()
        assert elapsed_ms >= (k_writes // 2) * delay_ms * 0.95, (kind, elapsed_ms)   # timer granularity
