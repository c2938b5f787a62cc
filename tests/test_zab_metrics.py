"""The Zab roles move ServerMetrics' quorum counters and summaries where Java 3.8 moves them, so `mntr` on a
zkref ensemble shows the numbers a Java ensemble shows: the same writes through a follower, on a three-server
zkref ensemble (AdminServer off) and on a Java 3.8 ensemble of the same shape, give the same deterministic
counts on the same roles, and the timing summaries are non-zero where Java's are.
"""
from __future__ import annotations

import re
import socket
import struct
import time

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.timeout(400)

N = 10                     # writes through a follower
TXNS = N + 2               # plus the session's createSession and closeSession
WAKERS = 2                 # run(): one idle session per follower, opened first (ZOOKEEPER-4537, see run)
RUN_TXNS = TXNS + WAKERS   # run()'s txns: the wakers' createSession too
ACK_EVERY = 2              # -Dzookeeper.leader.ackLoggingFrequency: ack_latency samples zxids divisible by it


def rows(port: int) -> dict[str, str]:
    "`mntr` as {key: value}, without the zk_ prefix."
    out = four_letter_word(port, "mntr")
    return {k[3:]: v for k, v in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}


def n(r: dict[str, str], key: str) -> int:
    "A counter, or a summary's `cnt_`/`sum_` value, as an int (0 when mntr leaves it out)."
    return int(float(r.get(key, "0")))


def revalidate(port: int, session_id: int, passwd: bytes) -> None:
    """Reopen a session on another server with a bare ConnectRequest, read the answer, drop the socket (the
    session lives on): a learner must ask the leader with REVALIDATE. Java: Learner.validateSession"""
    body = struct.pack(">iqiqi", 0, 0, 30000, session_id, len(passwd)) + passwd + b"\x00"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (length,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        answer = s.recv(length, socket.MSG_WAITALL)
    (_, _, sid) = struct.unpack_from(">iiq", answer)
    assert sid == session_id, f"the session was not reopened: {answer!r}"


def run(kind: str, root) -> dict[str, dict[str, str]]:
    """Form a `kind` ensemble, open an idle session on each follower, write N znodes through a follower, reopen
    the session once on the other follower, close it; `mntr` of the leader, the client's follower and the other
    follower once all committed.

    The idle sessions are a way round ZOOKEEPER-4537 (Debian's 3.8.0: a CommitProcessor can sleep with a
    commit queued until another request arrives; see test_differential_ensemble): while a follower has not
    applied every commit, a read on its idle session wakes it. A read on a follower touches none of the
    compared counters (it is not forwarded to the leader); the two createSession txns are counted in RUN_TXNS
    on both servers alike."""
    e = Ensemble(root, (kind,) * 3, jvm_flags=[f"-Dzookeeper.leader.ackLoggingFrequency={ACK_EVERY}"])
    e.start()
    wakers: dict[int, KazooClient] = {}
    try:
        leader = e.wait_formed()
        f1, f2 = (i for i in e.ids if i != leader)
        for f in (f1, f2):
            wakers[f] = KazooClient(hosts=f"127.0.0.1:{e.client(f)}", timeout=30)
            wakers[f].start(30)
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(f1)}", timeout=30)
        zk.start(30)
        try:
            for i in range(N):
                zk.create(f"/m{i}", b"x")
            session_id, passwd = zk.client_id
            revalidate(e.client(f2), session_id, passwd)
        finally:
            zk.stop()
            zk.close()

        def applied(f: int) -> bool:
            "Has follower f applied every commit? If not, wake its CommitProcessor with a read (ZOOKEEPER-4537)."
            if n(rows(e.client(f)), "cnt_propagation_latency") >= RUN_TXNS:
                return True
            wakers[f].exists_async("/zookeeper")
            return False

        # A COMMIT is counted as it arrives (Leader.commit, Follower.processPacket), the propagation latency once
        # FinalRequestProcessor has applied it: wait for both, or mntr may be read between the two for the last txn.
        wait_for(lambda: n(rows(e.client(leader)), "commit_count") >= RUN_TXNS, 30, what="the leader's commits")
        wait_for(lambda: n(rows(e.client(leader)), "cnt_propagation_latency") >= RUN_TXNS, 30,
                 what="the leader's commits applied")
        for f in (f1, f2):
            wait_for(lambda: n(rows(e.client(f)), "learner_commit_received_count") >= RUN_TXNS, 30,
                     what=f"server {f}'s commits")
            wait_for(lambda: applied(f), 30, 0.5, what=f"server {f}'s commits applied")
        assert e.modes() == ["follower", "follower", "leader"], "the ensemble changed roles during the test"
        statics = re.findall(r"\[myid:\d+\] - INFO  \[.*?:Leader@\d+\] - (TCP NoDelay.*|zookeeper\.leader\..*)",
                             e.log(leader))
        return {"leader": dict(rows(e.client(leader)), sid=str(leader)), "leader_statics": statics,
                "client_follower": rows(e.client(f1)), "other_follower": rows(e.client(f2))}
    finally:
        for w in wakers.values():
            w.stop()
            w.close()
        e.stop_all()


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    "(java, zkref): the same run on a Java 3.8 ensemble and on a zkref one."
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    java = run("java", tmp_path_factory.mktemp("java"))
    zkref = run("zkref", tmp_path_factory.mktemp("zkref"))
    return java, zkref


# Every server: its database's load, its tree's per-namespace writes of each create and, per logged txn, the
# SyncRequestProcessor's samples. (A learner's snapshots and config writes depend on whether it synced before
# or after the leader started serving — DIFF or SNAP, in Java too — so only the leader's are compared.)
STORAGE_EQUAL = ["cnt_dbinittime", "cnt_startup_snap_load_time", "sync_processor_request_queued",
                 "cnt_sync_processor_queue_size", "cnt_sync_processor_queue_time_ms", "cnt_sync_process_time",
                 "sum_sync_processor_batch_size", "cnt_sync_processor_queue_and_flush_time_ms",
                 "cnt_m0_write_per_namespace"]
LEADER_STORAGE_EQUAL = ["cnt_snapshottime", "cnt_zookeeper_write_per_namespace", "sum_zookeeper_write_per_namespace"]
LEADER_EQUAL = ["proposal_count", "commit_count", "revalidate_count", "looking_count", "cnt_quorum_ack_latency",
                "cnt_proposal_ack_creation_latency", "cnt_propagation_latency", "cnt_election_time",
                "cnt_unavailable_time", "cnt_leader_unavailable_time", "learner_proposal_received_count",
                "learner_commit_received_count", "prep_processor_request_queued", "cnt_prep_processor_queue_size",
                "cnt_prep_processor_queue_time_ms", "cnt_prep_process_time", "cnt_proposal_process_time",
                "connection_revalidate_count", "cnt_request_throttle_queue_time_ms"] + STORAGE_EQUAL + LEADER_STORAGE_EQUAL
FOLLOWER_EQUAL = ["learner_proposal_received_count", "learner_commit_received_count", "cnt_proposal_latency",
                  "cnt_commit_propagation_latency", "cnt_proposal_ack_creation_latency", "cnt_propagation_latency",
                  "cnt_follower_sync_time", "cnt_observer_sync_time", "cnt_election_time", "cnt_unavailable_time",
                  "cnt_leader_unavailable_time", "looking_count", "proposal_count", "commit_count",
                  "diff_count", "snap_count", "revalidate_count", "prep_processor_request_queued",
                  "connection_revalidate_count"] + STORAGE_EQUAL


def test_leader_counts_equal_javas(both):
    """On the leader, the counts that follow from the workload equal Java's: one proposal and one commit per
    txn (N creates, the sessions' createSession, closeSession), one quorum-ack, own-ack-creation and propagation latency
    sample per txn, one REVALIDATE, one election and one unavailable window (a leader's, too); Prep's samples
    per request (and one more before its first take); one database load and the snapshot of the new epoch;
    the tree's per-namespace writes (the quorum config written into /zookeeper/config, each create); the SyncRequestProcessor's samples per logged txn (and one more
    queue-size sample before its first poll).
    Reference: Leader.propose, Leader.commit, Leader.tryToCommit, AckRequestProcessor.processRequest,
    FinalRequestProcessor.processRequest, LearnerHandler.run (REVALIDATE), QuorumPeer.setZabState,
    PrepRequestProcessor.run/pRequest, SyncRequestProcessor.run/flush, ZKDatabase.loadDataBase,
    ZooKeeperServer.takeSnapshot, DataTree.updateWriteStat"""
    java, zkref = both
    want = {k: n(java["leader"], k) for k in LEADER_EQUAL}
    assert want["proposal_count"] == RUN_TXNS and want["revalidate_count"] == 1, want   # what Java printed
    assert {k: n(zkref["leader"], k) for k in LEADER_EQUAL} == want


@pytest.mark.parametrize("role", ["client_follower", "other_follower"])
def test_follower_counts_equal_javas(both, role):
    """On each follower, the counts equal Java's: every PROPOSAL and COMMIT received is counted, with one
    proposal-latency, commit-propagation, ack-creation and propagation sample per txn, one follower sync, one
    election and one unavailable window; one database load (and a snapshot only after a SNAP sync: the learners'
    snapshots add up to the SNAPs the leader counted); the
    SyncRequestProcessor's samples per logged txn; the leader-only counters, Prep's included, stay 0.
    Reference: Follower.processPacket, FollowerZooKeeperServer.commit/logRequest, SendAckRequestProcessor,
    Follower.followLeader (FOLLOWER_SYNC_TIME), QuorumPeer.setZabState, SyncRequestProcessor.run/flush,
    ZKDatabase.loadDataBase, DataTree.updateWriteStat"""
    java, zkref = both
    want = {k: n(java[role], k) for k in FOLLOWER_EQUAL}
    assert want["learner_proposal_received_count"] == RUN_TXNS and want["cnt_follower_sync_time"] == 1, want
    assert {k: n(zkref[role], k) for k in FOLLOWER_EQUAL} == want
    for r in both:   # a learner snapshots after a SNAP sync, not after a DIFF; the leader counts the SNAPs it sent
        assert n(r[role], "cnt_snapshottime") in (0, 1), r[role].get("cnt_snapshottime")
        learner_snapshots = sum(n(r[f], "cnt_snapshottime") for f in ("client_follower", "other_follower"))
        assert learner_snapshots == n(r["leader"], "snap_count"), (learner_snapshots, r["leader"].get("snap_count"))



@pytest.mark.parametrize("role", ["leader", "client_follower", "other_follower"])
def test_one_fsync_per_flushed_batch(both, role):
    """Every server's SyncRequestProcessor flushes its batches with FileTxnLog.commit, which fsyncs the one log
    file once per flush: fsynctime, sync_processor_batch_size and sync_processor_queue_flush_time_ms have one
    sample per flush, on Java and on zkref (how the txns fall into batches depends on timing).
    Reference: SyncRequestProcessor.flush (BATCH_SIZE, SYNC_PROCESSOR_FLUSH_TIME), FileTxnLog.commit (FSYNC_TIME)"""
    for r in both:
        flushes = n(r[role], "cnt_sync_processor_batch_size")
        assert n(r[role], "cnt_fsynctime") == n(r[role], "cnt_sync_processor_queue_flush_time_ms") == flushes
        assert 1 <= flushes <= RUN_TXNS

def test_leader_logs_its_static_settings_as_java(both):
    """The first leader of a process logs Leader's static settings as Java logs them when the class loads:
    TCP NoDelay, ackLoggingFrequency (as set with -D), maxTimeToWaitForEpoch.
    Reference: Leader's static initializers (leader.nodelay, zookeeper.leader.ackLoggingFrequency,
    zookeeper.leader.maxTimeToWaitForEpoch)"""
    java, zkref = both
    assert java["leader_statics"] == ["TCP NoDelay set to: true", f"zookeeper.leader.ackLoggingFrequency = {ACK_EVERY}",
                                      "zookeeper.leader.maxTimeToWaitForEpoch = -1ms"]
    assert zkref["leader_statics"] == java["leader_statics"]


def test_learner_syncs_counted_as_java(both):
    """The leader counts one sync per follower — DIFF, or SNAP when a follower connects after the leader's
    first snapshot moved its zxid to the new epoch (a race Java has too) — and samples the syncs in flight as
    each begins and as it ends at the NEWLEADER ACK.
    Reference: LearnerHandler.run (DIFF_COUNT, SNAP_COUNT, INFLIGHT_DIFF_COUNT, INFLIGHT_SNAP_COUNT)"""
    for r in both:
        leader = r["leader"]
        assert n(leader, "diff_count") + n(leader, "snap_count") == 2
        assert n(leader, "cnt_inflight_diff_count") == 2 * n(leader, "diff_count")
        assert n(leader, "cnt_inflight_snap_count") == 2 * n(leader, "snap_count")


def test_per_learner_summaries_as_java(both):
    """Per-learner summary sets are keyed by sid as Java's: `ack_latency` samples the ACKs of every
    ackLoggingFrequency-th zxid until it commits (at least the two that formed each quorum), the leader's
    queue length is sampled per packet sent to each learner, and the first queued packet's marker times the
    queue once per learner (fewer than 1000 packets).
    Reference: Leader.processAck (ACK_LATENCY), LearnerHandler.sendPackets (LEARNER_HANDLER_QP_SIZE/QP_TIME)"""
    sampled = sum(1 for c in range(1, RUN_TXNS + 1) if ((1 << 32) + c) % ACK_EVERY == 0)
    for r in both:
        leader = r["leader"]
        sids = {1, 2, 3} - {int(leader["sid"])}
        assert sum(n(leader, f"cnt_{s}_ack_latency") for s in (1, 2, 3)) >= 2 * sampled
        for s in sids:
            assert n(leader, f"cnt_{s}_learner_handler_qp_size") > 0
            assert n(leader, f"cnt_{s}_learner_handler_qp_time_ms") == 1


def run_with_observer(kind: str, root) -> dict[str, str]:
    """Two voters and an observer (server 3, `peerType=observer`): N writes through a voter, then the observer's
    `mntr` once it has every commit."""
    e = Ensemble(root, (kind,) * 3)
    for i, server in e.servers.items():       # server.3 is an observer in every zoo.cfg; server 3 knows it is one
        server.config["server.3"] = f"{server.config['server.3']}:observer"
        if i == 3:
            server.config["peerType"] = "observer"
        server.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in server.config.items()))
    e.start()
    try:
        wait_for(lambda: e.modes() == ["follower", "leader", "observer"], 90, 0.2, "a leader, a follower, an observer")
        voter = next(i for i in (1, 2) if e.mode(i) == "follower")
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(voter)}", timeout=30)
        zk.start(30)
        try:
            for i in range(N):
                zk.create(f"/o{i}", b"x")
        finally:
            zk.stop()
            zk.close()
        wait_for(lambda: n(rows(e.client(3)), "learner_commit_received_count") >= TXNS, 30, what="the observer's INFORMs")
        # an INFORM is counted as it arrives, applied and flushed later: read mntr once every txn handed to Sync is
        # flushed and the compared counts read the same twice, 0.3 s apart
        def settled():
            first = rows(e.client(3))
            if n(first, "sync_processor_request_queued") != n(first, "sum_sync_processor_batch_size"):
                return None
            time.sleep(0.3)
            again = rows(e.client(3))
            return again if all(first.get(k) == again.get(k) for k in OBSERVER_EQUAL) else None
        return wait_for(settled, 30, what="the observer's counts to settle")
    finally:
        e.stop_all()


OBSERVER_EQUAL = ["learner_commit_received_count", "learner_proposal_received_count", "cnt_commit_propagation_latency",
                  "cnt_propagation_latency", "cnt_proposal_latency", "cnt_proposal_ack_creation_latency",
                  "cnt_observer_sync_time", "cnt_follower_sync_time", "cnt_election_time", "cnt_unavailable_time"
                  ] + STORAGE_EQUAL


def test_observer_counts_equal_javas(tmp_path):
    """An observer counts each INFORM as a commit received, with one commit-propagation and one propagation
    sample per txn, and its sync as `observer_sync_time`; it gets no PROPOSALs and sends no ACKs. It logs each
    INFORMed txn through a SyncRequestProcessor with no next processor (syncEnabled, the default), so the
    per-txn Sync samples move but for the queue-and-flush time, which only a next processor's hand-off records.
    Reference: Observer.processPacket (INFORM), Observer.observeLeader (OBSERVER_SYNC_TIME),
    ObserverZooKeeperServer.commitRequest, SyncRequestProcessor.flush"""
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    java = run_with_observer("java", tmp_path / "java")
    want = {k: n(java, k) for k in OBSERVER_EQUAL}
    assert want["learner_commit_received_count"] == TXNS and want["cnt_observer_sync_time"] == 1, want
    zkref = run_with_observer("zkref", tmp_path / "zkref")
    assert {k: n(zkref, k) for k in OBSERVER_EQUAL} == want


@pytest.mark.parametrize("role,keys", [
    ("leader", ["sum_election_time", "sum_unavailable_time", "sum_leader_unavailable_time"]),
    ("client_follower", ["sum_election_time", "sum_unavailable_time"]),
])
def test_times_non_zero(both, role, keys):
    """The times of a real election and of the unavailable window are milliseconds, non-zero on both.
    Reference: Leader.lead / Follower.followLeader (ELECTION_TIME), QuorumPeer.setZabState (UNAVAILABLE_TIME)"""
    for r in both:
        assert all(n(r[role], k) > 0 for k in keys), {k: r[role].get(k) for k in keys}
